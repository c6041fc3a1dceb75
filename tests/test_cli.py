import json
import subprocess
import sys

import pytest

from motive.cli import build_parser, main

SUBCOMMANDS = ["world", "pretrain", "featurize", "attribute", "finetune", "evaluate", "demo"]


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


def test_demo_quick_end_to_end(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "motive", "demo", "--quick", "--quiet", "--out", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "world" / "pool" / "metadata.csv").is_file()
    assert (out / "base_model" / "model_index.json").is_file()
    assert summary["pretrain"]["motion_word_sensitivity"]["clips"] == 10
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # reuses world and model
    assert again.returncode == 0 and "reusing" in again.stdout
