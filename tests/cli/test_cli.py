import json

import pytest

from motive.cli import build_parser, main

SUBCOMMANDS = [
    "world",
    "pretrain",
    "featurize",
    "store",
    "queries",
    "attribute",
    "report",
    "finetune",
    "export",
    "generate",
    "evaluate",
    "compare",
    "demo",
    "motion",
    "study",
]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in text


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"motive {name}" in capsys.readouterr().out


def test_parser_knows_all_subcommands():
    actions = [a for a in build_parser()._subparsers._group_actions if a.dest == "command"]
    assert sorted(actions[0].choices) == sorted(SUBCOMMANDS)


def test_bad_dataset_gives_clear_error(tmp_path, capsys):
    code = main(["pretrain", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m"), "--quiet"])
    assert code == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_motion_end_to_end(tmp_path, capsys):
    import numpy as np

    from motive.data.video import write_video

    frames = np.random.default_rng(0).integers(0, 255, (9, 32, 48, 3), dtype=np.uint8)
    clip = write_video(tmp_path / "clip.mkv", frames[:1].repeat(9, 0), 8.0)  # a still clip, lossless
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"junk")
    out = tmp_path / "out"
    args = ["motion", str(clip), str(bad), "--out", str(out), "--workers", "1", "--quiet"]
    code = main([*args, "--camera-compensation", "--save-flow", "--latent-stride", "16", "--mode", "anchor"])
    assert code == 0
    text = capsys.readouterr().out
    assert "1/2 clips" in text and "failed:" in text and "bad.mp4" in text
    stats = json.loads((out / "clip" / "stats.json").read_text())
    assert stats["settings"]["camera_compensation"] and stats["settings"]["mode"] == "anchor"
    assert stats["raw_mean_flow"] == 0.0 and not stats["camera_only"]  # a still clip
    assert np.load(out / "clip" / "mask.npy").shape == (3, 2, 3)
    assert np.load(out / "clip" / "flow.npy").shape == (8, 32, 48, 2)


def test_top_level_help_loads_no_heavy_library():
    """``motive --help`` answers without importing torch: a subcommand's options load only when chosen."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom motive.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\nprint('light')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "light" in run.stdout, run.stderr[-2000:]


def test_demo_options_reach_its_config():
    from motive.cli.options import from_args
    from motive.demo.config import DemoConfig

    args = build_parser("demo").parse_args(
        ["demo", "--world-seed", "1", "--condition", "first-frame", "--tokenizer", "word"]
        + ["--vae-from", "m", "--target-motions", "slide,bounce"]
    )
    config = from_args(DemoConfig(), args)
    assert config.world.seed == 1 and config.world.pool_clips == 1000  # the demo's sizes kept
    assert (config.condition, config.tokenizer, config.vae_from) == ("first-frame", "word", "m")
    assert config.target_motions == ["slide", "bounce"]
