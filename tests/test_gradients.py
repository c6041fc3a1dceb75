import torch

from motive.gradients import GradientConfig, GradientFeaturizer, common_noise


def _inputs(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(1, 16, 5, 8, 8, generator=g)
    w = torch.rand(1, 5, 8, 8, generator=g)
    text = model.encode_text(["a red ball bouncing on a checkered floor"])
    return h, text, w


def test_gradient_equals_brute_force_autograd(tiny_model):
    cfg = GradientConfig(sigma=0.6, noise_seed=5)
    feat = GradientFeaturizer(tiny_model, cfg, (16, 5, 8, 8), frames=17)
    h, text, w = _inputs(tiny_model)
    g = feat.gradient(h, text, w)
    # reference written out from METHOD.md §2 with plain autograd
    eps = common_noise((16, 5, 8, 8), 5, 1)[0][None]
    x = 0.4 * h + 0.6 * eps
    params = [p for _, p in tiny_model.transformer.named_parameters()]
    pred = tiny_model.transformer(
        hidden_states=x, timestep=torch.tensor([600.0]), encoder_hidden_states=text, return_dict=False
    )[0]
    loss = ((pred - (eps - h)) ** 2).mean(dim=1).mul(w).mean() / 17
    ref = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params)])
    assert g.shape == ref.shape == (feat.dim,)
    torch.testing.assert_close(g, ref, rtol=1e-4, atol=1e-9)


def test_frame_normalisation_scales_by_one_over_f(tiny_model):
    h, text, w = _inputs(tiny_model)
    with_f = GradientFeaturizer(tiny_model, GradientConfig(), (16, 5, 8, 8), frames=17).gradient(h, text, w)
    without = GradientFeaturizer(
        tiny_model, GradientConfig(frame_norm=False), (16, 5, 8, 8), frames=17
    ).gradient(h, text, w)
    torch.testing.assert_close(without / 17, with_f, rtol=1e-5, atol=1e-10)


def test_no_motion_mask_ignores_the_mask(tiny_model):
    h, text, w = _inputs(tiny_model)
    feat = GradientFeaturizer(tiny_model, GradientConfig(use_mask=False), (16, 5, 8, 8), frames=17)
    torch.testing.assert_close(feat.gradient(h, text, w), feat.gradient(h, text, torch.ones_like(w)))
    masked = GradientFeaturizer(tiny_model, GradientConfig(use_mask=True), (16, 5, 8, 8), frames=17)
    assert not torch.allclose(masked.gradient(h, text, w), masked.gradient(h, text, torch.ones_like(w)))


def test_feature_is_unit_and_self_score_is_one(tiny_model):
    h, text, w = _inputs(tiny_model)
    feat = GradientFeaturizer(
        tiny_model, GradientConfig(noise_draws=2, proj_dim=64), (16, 5, 8, 8), frames=17
    )
    v, norm = feat.feature(h, text, w)
    assert v.shape == (64,) and norm > 0
    torch.testing.assert_close(v.norm(), torch.tensor(1.0))
    v2, _ = feat.feature(h, text, w)
    torch.testing.assert_close(v @ v2, torch.tensor(1.0))


def test_parameter_subset(tiny_model):
    feat = GradientFeaturizer(tiny_model, GradientConfig(params=["blocks.0.*"]), (16, 5, 8, 8), frames=17)
    assert 0 < feat.dim < tiny_model.num_parameters()
    h, text, w = _inputs(tiny_model)
    assert feat.gradient(h, text, w).shape == (feat.dim,)
    GradientFeaturizer(tiny_model, GradientConfig(), (16, 5, 8, 8), frames=17)  # restore requires_grad


def test_common_noise_is_reproducible():
    a, b = common_noise((2, 3), 7, 2), common_noise((2, 3), 7, 2)
    torch.testing.assert_close(a[1], b[1])
    assert not torch.allclose(a[0], a[1])


def test_batched_features_equal_one_by_one(tiny_model):
    feat = GradientFeaturizer(
        tiny_model, GradientConfig(noise_draws=2, proj_dim=64), (16, 5, 8, 8), frames=17
    )
    a, b = _inputs(tiny_model, 1), _inputs(tiny_model, 2)
    stacked, norms = feat.features([a, b])
    single = torch.stack([feat.feature(*a)[0], feat.feature(*b)[0]])
    torch.testing.assert_close(stacked, single, rtol=1e-4, atol=1e-5)
    feat.stack_bytes = 0  # force the one-by-one projection path
    torch.testing.assert_close(feat.features([a, b])[0], stacked, rtol=1e-4, atol=1e-5)
    assert len(norms) == 2 and norms[0] > 0
