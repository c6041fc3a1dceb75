"""Options generated from config dataclasses: flags, types, switches, nesting, and defaults that come
only from the dataclass."""

import argparse
from dataclasses import dataclass, field

import pytest

from motive.cli import build_parser
from motive.cli.options import add_options, from_args
from motive.gradients import GradientConfig
from motive.store import FeaturizeOptions


@dataclass(frozen=True)
class Inner:
    level: float = field(default=0.5, metadata={"help": "a level"})
    hidden: int = 3  # no help: not an option


@dataclass
class Outer:
    count: int = field(default=2, metadata={"help": "how many"})
    names: list[str] | None = field(default=None, metadata={"help": "names"})
    on: bool = field(default=True, metadata={"help": "turn it off"})
    off: bool = field(default=False, metadata={"help": "turn it on"})
    kind: str = field(default="a", metadata={"help": "kind", "choices": ("a", "b"), "flag": "--sort"})
    inner: Inner = field(default_factory=Inner, metadata={"nested": "in-"})


def _parse(*argv: str, base=None) -> Outer:
    parser = argparse.ArgumentParser()
    add_options(parser, Outer)
    return from_args(base or Outer(), parser.parse_args(argv))


def test_defaults_come_from_the_base_instance():
    assert _parse() == Outer()
    base = Outer(count=7, inner=Inner(level=0.1))
    assert _parse(base=base) == base  # nothing given: nothing replaced


def test_every_kind_of_option():
    got = _parse("--count", "4", "--names", "x, y", "--no-on", "--off", "--sort", "b", "--in-level", "0.25")
    assert got == Outer(count=4, names=["x", "y"], on=False, off=True, kind="b", inner=Inner(level=0.25))


def test_fields_without_help_are_not_options_and_choices_are_checked():
    with pytest.raises(SystemExit):
        _parse("--in-hidden", "5")
    with pytest.raises(SystemExit):
        _parse("--sort", "c")


def test_featurize_flags_build_the_configs_the_api_builds():
    args = build_parser().parse_args(
        "featurize --model m --data d --out o --sigma 0.3 --no-motion-mask --params a.*,b.* "
        "--work-size 0 --camera-compensation --no-cut-detection --batch-size 4 --no-cache "
        "--regenerate-projection".split()
    )
    g = from_args(GradientConfig(), args)
    assert (g.sigma, g.use_mask, g.params) == (0.3, False, ["a.*", "b.*"])
    assert g.mask.work_size is None and g.mask.camera_compensation and not g.mask.cut_detection
    assert from_args(FeaturizeOptions(), args) == FeaturizeOptions(
        batch_size=4, use_cache=False, keep_tables=False
    )
    plain = build_parser().parse_args("featurize --model m --data d --out o".split())
    assert from_args(GradientConfig(), plain) == GradientConfig()


def test_help_shows_the_dataclass_default(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["featurize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {GradientConfig().sigma})" in text
