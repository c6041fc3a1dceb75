import json
from pathlib import Path

import pandas as pd

from motive.data.dataset import load_dataset
from tests.store.helpers import attribute_cli, cli


def test_cli_pipeline_end_to_end(model_dir, mini_world, tmp_path, capsys):
    store, res, tuned = tmp_path / "store", tmp_path / "res", tmp_path / "tuned"
    pool, queries = mini_world / "pool", mini_world / "query"
    featurize = ("featurize", "--model", model_dir, "--data", pool, "--out", store, "--proj-dim", 64)
    assert cli(*featurize, "--regenerate-projection", "--quiet") == 0
    assert attribute_cli(model_dir, store, queries, res, "--fraction", 0.3) == 0
    scores = pd.read_parquet(res / "scores.parquet")
    assert scores.shape == (10, 11)  # video column + one per query
    selection = pd.read_csv(res / "selection.csv")
    assert len(selection) == 3 and {"score", "votes", "rank"} <= set(selection.columns)
    assert list(selection["rank"]) == [1, 2, 3]
    assert (res / "bottom.csv").is_file()
    # a second attribution seed's store joins the first as an ensemble (their scores averaged)
    seed1 = (*featurize[:-3], tmp_path / "store1", "--proj-dim", 64, "--noise-seed", 1, "--proj-seed", 1)
    assert cli(*seed1, "--quiet") == 0
    both = ("attribute", "--model", model_dir, "--store", store, tmp_path / "store1", "--queries", queries)
    assert cli(*both, "--out", tmp_path / "ens", "--fraction", 0.3, "--quiet") == 0
    assert len(json.loads((tmp_path / "ens" / "attribution.json").read_text())["ensemble"]) == 2
    # selection.csv is itself a valid dataset table for the pool folder
    assert len(load_dataset(pool, table_path=res / "selection.csv")) == 3
    finetune = ("finetune", "--model", model_dir, "--data", pool, "--selection", res / "selection.csv")
    assert cli(*finetune, "--out", tuned, "--steps", 2, "--quiet") == 0
    assert (tuned / "transformer").is_dir() and not (tuned / "model_index.json").exists()  # what was trained
    assert json.loads((tuned / "motive.json").read_text())["base"] == str(Path(model_dir).resolve())
    assert json.loads((tuned / "finetune.json").read_text())["clips"] == 3
    capsys.readouterr()
    figures = tmp_path / "evaluate.json"
    evaluate = ("evaluate", "--model", model_dir, tuned, "--data", mini_world / "eval", "--out", figures)
    assert cli(*evaluate, "--num-prompts", 2, "--steps", 2) == 0
    table = capsys.readouterr().out  # a table: one row per model
    assert table.startswith("| model | target_motion_loss |") and f"| {tuned} |" in table
    results = json.loads(figures.read_text())
    assert set(results) == {str(model_dir), str(tuned)}
    assert all(r["target_motion_loss"] > 0 and 0 <= r["dynamic_degree"] <= 1 for r in results.values())
    assert cli(*evaluate, "--motions", "bounce", "--num-prompts", 1, "--steps", 2) == 0
    results = json.loads(figures.read_text())  # the other motions' clips give the specificity
    assert results[str(model_dir)]["target_specificity"] == 0.0  # the first model is the base
    tuned_result = results[str(tuned)]
    assert tuned_result["other_motion_loss"] > 0 and tuned_result["target_specificity"] != 0.0
    for method in ("random", "motion_magnitude", "mask_similarity"):
        assert attribute_cli(model_dir, store, queries, tmp_path / method, "--method", method) == 0
        assert len(pd.read_csv(tmp_path / method / "selection.csv")) == 1


def test_query_with_another_model_is_refused(model_dir, mini_world, tmp_path, capsys):
    from motive.models.tiny import build_tiny_model

    other = build_tiny_model(seed=9).save_pretrained(tmp_path / "other")
    store, queries = tmp_path / "store", mini_world / "query"
    assert (
        cli("featurize", "--model", model_dir, "--data", queries, "--out", store, "--proj-dim", 32, "--quiet")
        == 0
    )
    assert attribute_cli(other, store, queries, tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert "was built with another model" in err and str(model_dir) in err  # the path the store records
