import numpy as np
import pytest

from motive.scoring import cosine_scores, majority_vote, mask_similarity


def test_cosine_self_is_one():
    x = np.random.default_rng(0).normal(size=(6, 10))
    s = cosine_scores(x, x)
    np.testing.assert_allclose(np.diag(s), 1.0, rtol=1e-6)
    assert np.all(np.abs(s) <= 1 + 1e-6)
    assert cosine_scores(np.zeros((1, 3)), x[:, :3])[0].tolist() == [0.0] * 6


def test_majority_vote_on_hand_made_scores():
    # 10 clips x 3 queries; 90th percentile per column -> exactly one vote per column here
    s = np.zeros((10, 3))
    s[2] = [0.9, 0.9, 0.1]  # two votes
    s[5] = [0.1, 0.2, 0.95]  # one vote, high mean
    s[7] = [0.5, 0.0, 0.0]  # no vote: 0.5 is below column 0's 90th percentile (0.81)
    s[8] = [0.8, 0.0, 0.3]
    sel = majority_vote(s, percentile=90, fraction=0.3)
    np.testing.assert_array_equal(sel.votes[[2, 5, 7, 8]], [2, 1, 0, 0])
    assert sel.order[0] == 2 and sel.order[1] == 5  # votes first
    assert list(sel.top) == [2, 5, 8]  # then ties by mean score (8: 0.367 > 7: 0.167)
    assert sel.bottom[0] in (0, 1, 3, 4, 6, 9)  # lowest mean, no votes
    masked = majority_vote(s, fraction=0.3, valid=np.arange(10) != 2)
    assert 2 not in masked.order and masked.order[0] == 5


def test_mask_similarity():
    a = np.zeros((2, 2, 2, 2))
    a[0, :, 0, 0] = 1
    a[1, :, 1, 1] = 1
    s = mask_similarity(a, a[:1])
    np.testing.assert_allclose(s[:, 0], [1.0, 0.0])


def test_empty_selection_rejected():
    with pytest.raises(ValueError):
        majority_vote(np.zeros((3, 1)), valid=np.zeros(3, bool))


def test_top_k_is_the_largest_finite_values_largest_first():
    from motive.scoring import top_k

    values = np.array([0.1, np.nan, 0.9, -np.inf, 0.5, 0.9, 0.3])
    assert top_k(values, 3).tolist() == [2, 5, 4]
    assert top_k(values, 10).tolist() == [2, 5, 4, 6, 0]
    rng = np.random.default_rng(0).standard_normal(10_000)
    np.testing.assert_array_equal(top_k(rng, 50), np.argsort(-rng, kind="stable")[:50])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def _pool(seed: int = 0, n: int = 200, d: int = 16, q: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit rows [n, d] as a store holds them, with a few failed (zero, invalid) rows; queries [q, d]."""
    rng = np.random.default_rng(seed)
    rows = _unit(rng.normal(size=(n, d)) + 0.5).astype(np.float32)  # [N, D'] a shared offset
    valid = rng.random(n) > 0.05  # [N]
    rows[~valid] = 0.0
    return rows, valid, rng.normal(size=(q, d)).astype(np.float32)


def test_centred_and_preconditioned_scores_equal_the_direct_computation_in_any_chunking():
    from motive.scoring import centred_scores, pool_stats, preconditioned_scores

    rows, valid, queries = _pool()
    phi = rows[valid].astype(np.float64)  # [N_valid, D']
    mu = phi.mean(axis=0)
    direct = np.zeros((len(rows), len(queries)))
    direct[valid] = cosine_scores(phi - mu, queries - mu)
    h = phi.T @ phi + 0.3 * np.trace(phi.T @ phi) / phi.shape[1] * np.eye(phi.shape[1])  # λ = 0.3 × mean eig
    q_hat = _unit(queries.astype(np.float64))
    precond = (
        rows @ np.linalg.inv(h) @ q_hat.T / np.sqrt(np.einsum("qd,de,qe->q", q_hat, np.linalg.inv(h), q_hat))
    )
    for chunk in (None, 37, 1):
        np.testing.assert_allclose(centred_scores(rows, queries, valid, chunk=chunk), direct, atol=1e-6)
        got = preconditioned_scores(rows, queries, damping=0.3, valid=valid, chunk=chunk)
        np.testing.assert_allclose(got, precond, rtol=1e-5, atol=1e-6)
    # the statistics of two shards add up to those of the whole pool
    whole = pool_stats(rows, valid, gram=True)
    halves = pool_stats(rows[90:], valid[90:], gram=True, into=pool_stats(rows[:90], valid[:90], gram=True))
    assert halves.count == whole.count == valid.sum()
    np.testing.assert_allclose(halves.gram, whole.gram, atol=1e-12)
    np.testing.assert_allclose(halves.mean, mu, atol=1e-12)


def test_preconditioning_with_a_huge_damping_ranks_like_the_plain_inner_product():
    from motive.scoring import preconditioned_scores

    rows, valid, queries = _pool(2)
    plain = cosine_scores(rows, queries)  # rows are unit: the inner product with the unit query
    damped = preconditioned_scores(rows, queries, damping=1e6, valid=valid)
    strong = preconditioned_scores(rows, queries, damping=1e-3, valid=valid)
    for j in range(queries.shape[0]):
        assert _spearman(damped[valid, j], plain[valid, j]) > 0.9999
    assert min(_spearman(strong[valid, j], plain[valid, j]) for j in range(queries.shape[0])) < 0.99


def test_centring_removes_a_direction_every_clip_shares():
    from motive.scoring import centred_scores

    rng = np.random.default_rng(3)
    n, d = 200, 16
    x, q = rng.normal(size=(n, d)), rng.normal(size=(5, d))  # [N, D'], [Q, D']
    truth = cosine_scores(x, q)
    common = _unit(rng.normal(size=(1, d)))[0] * 4 * np.sqrt(d)  # shared by every gradient, pool and query
    rows, shifted_q = _unit(x + common), _unit(q + common)  # unit, as stored
    raw = cosine_scores(rows, shifted_q)
    centred = centred_scores(rows, shifted_q, chunk=50)
    rho_raw = [_spearman(raw[:, j], truth[:, j]) for j in range(5)]
    rho_centred = [_spearman(centred[:, j], truth[:, j]) for j in range(5)]
    assert min(rho_centred) > 0.9 and np.mean(rho_centred) > np.mean(rho_raw) + 0.1


def test_preconditioning_refuses_no_damping():
    from motive.scoring import pool_stats, preconditioner

    rows, valid, queries = _pool(4)
    with pytest.raises(ValueError, match="damping"):
        preconditioner(pool_stats(rows, valid, gram=True), queries, damping=0.0)
    with pytest.raises(ValueError, match="ΦᵀΦ"):
        preconditioner(pool_stats(rows, valid), queries)


def test_static_queries_are_found_and_left_out_of_the_vote():
    from motive.scoring import static_queries

    queries = np.eye(4)[:3].copy()  # [3, 4]
    queries[1] = 0.0
    assert static_queries(queries).tolist() == [False, True, False]
    assert static_queries(np.zeros((2, 4))).tolist() == [True, True]
    scores = np.random.default_rng(5).normal(size=(50, 3))  # [N, Q]
    kept = np.array([True, False, True])
    sel = majority_vote(scores, kept=kept)
    alone = majority_vote(scores[:, kept])
    np.testing.assert_array_equal(sel.votes, alone.votes)
    np.testing.assert_array_equal(sel.order, alone.order)
    assert np.isnan(sel.thresholds[1]) and np.allclose(sel.thresholds[kept], alone.thresholds)
    every = majority_vote(scores, kept=np.ones(3, bool))  # all kept: the default vote, bit for bit
    np.testing.assert_array_equal(every.mean_score, majority_vote(scores).mean_score)
    with pytest.raises(ValueError, match="no query column"):
        majority_vote(scores, kept=np.zeros(3, bool))
