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
