"""The linear datamodeling score: its aggregation against dattri's, known answers, and the resumable
counterfactual run on the mini world."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from motive.lds import (
    LDSConfig,
    LDSMismatch,
    LossGrid,
    lds_scores,
    lds_table,
    mean_ci,
    query_losses,
    run_lds,
    sample_subsets,
    subset_size,
)


def linear_world(n: int = 100, m: int = 60, q: int = 40, noise: float = 0.05, seed: int = 0):
    """Subsets [M, N], true per-clip effects [N, Q] and outcomes from an exact linear datamodel plus
    noise: outcome = subsets @ true + noise (the loss decrease), and the fine-tuned losses it implies."""
    rng = np.random.default_rng(seed)
    subsets = sample_subsets(n, m, 0.5, seed)  # [M, N]
    true = rng.normal(size=(n, q))  # [N, Q]
    decrease = subsets @ true  # [M, Q]
    decrease = decrease + noise * decrease.std() * rng.normal(size=decrease.shape)
    base = rng.uniform(1, 2, size=q)  # [Q]
    return subsets, true, decrease, base[None, :] - decrease  # ..., fine-tuned losses [M, Q]


def test_matches_dattri_lds():
    """Same numbers as ``dattri.metric.lds``, whose ground truth is the negated fine-tuned loss (a
    per-query constant away from our loss decrease) and whose subsets are index rows [M, k]."""
    from dattri.metric import lds

    subsets, true, decrease, finetuned = linear_world(n=40, m=25, q=7, noise=1.5, seed=1)
    scores = true + np.random.default_rng(2).normal(size=true.shape)  # an imperfect method
    ours = lds_scores(scores, subsets, decrease)
    indices = torch.tensor(np.stack([np.flatnonzero(row) for row in subsets]))  # [M, k]
    theirs, _ = lds(torch.tensor(scores), (torch.tensor(-finetuned), indices))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-12)
    assert 0.2 < ours.mean() < 0.9  # an informative case: neither trivial nor perfect


def test_known_answers_of_a_linear_datamodel():
    subsets, true, decrease, _ = linear_world()
    assert lds_scores(true, subsets, decrease).mean() > 0.95
    assert lds_scores(-true, subsets, decrease).mean() < -0.95
    noise = np.random.default_rng(5).normal(size=true.shape)
    mean, lo, hi = mean_ci(lds_scores(noise, subsets, decrease))
    assert abs(mean) < 0.1 and lo < 0 < hi


def test_one_column_scores_broadcast_and_undefined_queries():
    subsets, true, decrease, _ = linear_world(q=4)
    col = true[:, :1]  # [N, 1]
    np.testing.assert_array_equal(
        lds_scores(col, subsets, decrease), lds_scores(np.repeat(col, 4, axis=1), subsets, decrease)
    )
    scores = true.copy()
    scores[:, 1] = 1.0  # every subset has the same size, so the same summed score: no ranking
    outcomes = decrease.copy()
    outcomes[:, 2] = 0.5  # a query no subset moved
    values = lds_scores(scores, subsets, outcomes)
    assert np.isnan(values[1]) and np.isnan(values[2])
    assert np.isfinite(values[[0, 3]]).all()
    mean, _, _ = mean_ci(values)
    assert mean == pytest.approx(np.mean(values[[0, 3]]))


def test_mean_ci_is_a_t_interval():
    mean, lo, hi = mean_ci(np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2  # t(0.975, 3) · sd / √4
    assert (mean, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half))
    assert np.isnan(mean_ci(np.array([0.3]))[1])


def test_subsets_exact_size_and_reproducible():
    a = sample_subsets(101, 20, 0.5, seed=7)
    assert a.shape == (20, 101) and a.dtype == bool
    assert subset_size(101, 0.5) == 50  # round(50.5) = 50 (Python's round)
    assert (a.sum(axis=1) == 50).all()
    np.testing.assert_array_equal(a, sample_subsets(101, 20, 0.5, seed=7))
    np.testing.assert_array_equal(a[:5], sample_subsets(101, 5, 0.5, seed=7))  # subset i ignores M
    assert not (a == sample_subsets(101, 20, 0.5, seed=8)).all()
    assert len({row.tobytes() for row in a}) == 20
    assert (sample_subsets(10, 3, 0.3, 0).sum(axis=1) == 3).all()
    with pytest.raises(ValueError):
        LDSConfig(subsets=1)


def test_query_losses_are_each_clips_loss_on_the_shared_grid(tiny_model, mini_world):
    """Per-clip losses on the shared grid equal a direct computation clip by clip (the grid's ε drawn
    from its seed, the clip's motion mask as weight), whatever the batching."""
    from motive.data.dataset import load_dataset
    from motive.evaluate import clip_losses
    from motive.inputs import dataset_inputs
    from motive.loss import per_sample_loss

    clips = list(load_dataset(mini_world / "query"))[:6]
    grid = LossGrid(sigmas=[0.3, 0.7], draws_per_sigma=2, noise_seed=11)
    losses = query_losses(tiny_model, clips, grid)
    assert losses.shape == (6,) and (losses >= 0).all() and (losses > 0).any()  # 0: a still clip
    np.testing.assert_allclose(losses, clip_losses(tiny_model, clips, grid, batch=4)[0], rtol=1e-6)
    for clip, x, loss in zip(clips[:2], dataset_inputs(tiny_model, clips[:2]), losses):
        gen = torch.Generator("cpu").manual_seed(11)
        direct = []
        for sigma in (0.3, 0.3, 0.7, 0.7):
            eps = torch.randn(x.latent.shape, generator=gen)
            text = tiny_model.encode_text([clip.prompt])
            with torch.no_grad():
                value = per_sample_loss(
                    tiny_model, x.latent[None], text, torch.tensor([sigma]), eps[None], x.mask[None]
                )
            direct.append(float(value))
        assert loss == pytest.approx(np.mean(direct), rel=1e-5)


def test_run_lds_writes_resumes_and_refuses(model_dir, mini_world, tmp_path):
    config = LDSConfig(
        subsets=3, steps=2, lr=1e-3, batch_size=2, grid=LossGrid(sigmas=[0.5], draws_per_sigma=1)
    )
    out = tmp_path / "lds"
    args = (model_dir, mini_world / "pool", mini_world / "query", out)
    first = run_lds(*args, config, progress=False)
    assert first["computed"] == [0, 1, 2]
    outcomes, subsets = np.load(out / "outcomes.npy"), np.load(out / "subsets.npy")
    n, q = len(first["pool_clips"]), len(first["query_clips"])
    assert outcomes.shape == (3, q) and subsets.shape == (3, n)
    assert np.isfinite(outcomes).all() and (outcomes != 0).any()  # the fine-tunes moved the losses
    assert sorted(f.name for f in (out / "subsets").iterdir()) == ["000.json", "001.json", "002.json"]

    (out / "subsets" / "001.json").unlink()  # as if killed before subset 1 finished
    again = run_lds(*args, config, progress=False)
    assert again["computed"] == [1]
    np.testing.assert_allclose(np.load(out / "outcomes.npy"), outcomes, rtol=1e-6, atol=1e-9)

    with pytest.raises(LDSMismatch, match="steps"):
        run_lds(*args, LDSConfig(**{**config.__dict__, "steps": 3}), progress=False)
    saved = json.loads((out / "subsets" / "002.json").read_text())
    saved["settings"]["lr"] = 0.5
    (out / "subsets" / "002.json").write_text(json.dumps(saved))
    with pytest.raises(LDSMismatch, match="subset 2"):
        run_lds(*args, config, progress=False)

    # the table: an array and the same scores as a scores.parquet in another row order agree
    scores = np.random.default_rng(0).normal(size=(n, q))
    frame = pd.DataFrame(scores, columns=first["query_clips"])
    frame.insert(0, "video", first["pool_clips"])
    frame.iloc[::-1].to_parquet(tmp_path / "scores.parquet", index=False)
    table = lds_table(out, {"array": scores, "parquet": tmp_path / "scores.parquet"})["methods"]
    np.testing.assert_array_equal(
        np.array(table["array"]["per_query"], dtype=float),
        np.array(table["parquet"]["per_query"], dtype=float),
    )
    np.testing.assert_array_equal(
        np.array(table["array"]["per_query"], dtype=float), lds_scores(scores, subsets, outcomes)
    )
