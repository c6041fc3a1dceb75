import pytest
import torch

from motive.loss import cell_error, masked_mean, per_sample_loss, temporal_error


def test_loss_matches_definition(tiny_model):
    torch.manual_seed(0)
    h, eps = torch.randn(2, 16, 5, 8, 8), torch.randn(2, 16, 5, 8, 8)
    text = tiny_model.encode_text(["a", "b"])
    sigma = torch.tensor([0.25, 0.75])
    with torch.no_grad():
        loss = per_sample_loss(tiny_model, h, text, sigma, eps)
        x = (1 - sigma.view(-1, 1, 1, 1, 1)) * h + sigma.view(-1, 1, 1, 1, 1) * eps
        ref = (tiny_model.velocity(x, sigma, text) - (eps - h)).pow(2).mean(dim=(1, 2, 3, 4))
        torch.testing.assert_close(loss, ref)
        ones = per_sample_loss(tiny_model, h, text, sigma, eps, torch.ones(2, 5, 8, 8))
        torch.testing.assert_close(ones, ref)  # W ≡ 1 is the standard loss


def test_masked_mean_weights_cells_and_divides_by_all_of_them():
    err = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[2.0, 2.0], [2.0, 2.0]]]])  # [2, 1, 2, 2]
    weight = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    torch.testing.assert_close(masked_mean(err), torch.tensor([2.5, 2.0]))
    torch.testing.assert_close(masked_mean(err, weight), torch.tensor([5.0 / 4, 1.0]))


def test_temporal_objective_is_the_weighted_frame_to_frame_change_of_the_error(tiny_model):
    torch.manual_seed(1)
    h, eps = torch.randn(2, 16, 5, 8, 8), torch.randn(2, 16, 5, 8, 8)
    text = tiny_model.encode_text(["a", "b"])
    sigma = torch.tensor([0.3, 0.6])
    w = torch.rand(2, 5, 8, 8)
    with torch.no_grad():
        loss = per_sample_loss(tiny_model, h, text, sigma, eps, w, objective="temporal")
        x = (1 - sigma.view(-1, 1, 1, 1, 1)) * h + sigma.view(-1, 1, 1, 1, 1) * eps
        r = tiny_model.velocity(x, sigma, text) - (eps - h)  # [2, C, 5, 8, 8]
        d = (r[:, :, 1:] - r[:, :, :-1]).pow(2).mean(dim=1)  # [2, 4, 8, 8]
        ref = (d * (w[:, 1:] + w[:, :-1]) / 2).mean(dim=(1, 2, 3))
        torch.testing.assert_close(loss, ref)


def test_temporal_error_ignores_what_is_the_same_in_every_frame():
    torch.manual_seed(2)
    residual = torch.randn(2, 16, 5, 8, 8)
    still = torch.randn(2, 16, 1, 8, 8)  # an error every frame shares: how the clip looks
    torch.testing.assert_close(temporal_error(residual + still), temporal_error(residual))
    assert float(temporal_error(still.expand(-1, -1, 5, -1, -1)).abs().max()) == 0.0
    with pytest.raises(ValueError, match="objective"):
        per_sample_loss(None, residual, None, torch.zeros(2), residual, objective="appearance")


def _first_frame_model():
    from motive.models.tiny import TinyConfig, build_tiny_model

    return build_tiny_model(TinyConfig(condition="first-frame", frames=5), seed=0)


def test_first_frame_tokens_get_timestep_zero_and_no_loss():
    model = _first_frame_model()
    torch.manual_seed(3)
    h, eps = torch.randn(2, 16, 3, 8, 8), torch.randn(2, 16, 3, 8, 8)
    text = model.encode_text(["a", "b"])
    sigma = torch.tensor([0.4, 0.9])
    seen = {}

    def hook(module, args, kwargs):
        seen["timestep"], seen["x"] = kwargs["timestep"].clone(), kwargs["hidden_states"].clone()

    handle = model.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    with torch.no_grad():
        err, w = cell_error(model, h, text, sigma, eps, torch.rand(2, 3, 8, 8))
    handle.remove()
    per_frame = (8 // 4) * (8 // 4)  # the demo model's 4×4 patches
    assert seen["timestep"].shape == (2, 3 * per_frame)
    assert float(seen["timestep"][:, :per_frame].abs().max()) == 0.0  # the given frame is clean
    torch.testing.assert_close(
        seen["timestep"][:, per_frame:], (1000 * sigma)[:, None].expand(-1, 2 * per_frame)
    )
    torch.testing.assert_close(seen["x"][:, :, 0], h[:, :, 0])  # ... and is the clip's own first latent
    assert err.shape == w.shape == (2, 2, 8, 8)  # the loss covers the two later latent frames
    with torch.no_grad():
        loss = per_sample_loss(model, h, text, sigma, eps, torch.ones(2, 3, 8, 8))
        other_noise = eps.clone()
        other_noise[:, :, 0] += 5.0  # the first frame's noise is never used
        heavy_first = torch.ones(2, 3, 8, 8)
        heavy_first[:, 0] = 100.0  # nor its mask weight
        torch.testing.assert_close(per_sample_loss(model, h, text, sigma, other_noise, heavy_first), loss)
        moved = h.clone()
        moved[:, :, 0] += 1.0  # but what it shows conditions the prediction of the later frames
        assert not torch.allclose(per_sample_loss(model, moved, text, sigma, eps), loss)
        # the same model asked for the text-to-video loss sees every frame at 1000·σ
        t2v = per_sample_loss(model, h, text, sigma, eps, condition="none")
        x = (1 - sigma.view(-1, 1, 1, 1, 1)) * h + sigma.view(-1, 1, 1, 1, 1) * eps
        ref = (model.velocity(x, sigma, text) - (eps - h)).pow(2).mean(dim=(1, 2, 3, 4))
        torch.testing.assert_close(t2v, ref)
    with pytest.raises(ValueError, match="condition"):
        per_sample_loss(model, h, text, sigma, eps, condition="last-frame")


def test_first_frame_temporal_objective_pairs_the_later_frames_only():
    model = _first_frame_model()
    torch.manual_seed(4)
    h, eps = torch.randn(1, 16, 3, 8, 8), torch.randn(1, 16, 3, 8, 8)
    text = model.encode_text(["a"])
    with torch.no_grad():
        err, w = cell_error(
            model, h, text, torch.tensor([0.5]), eps, torch.rand(1, 3, 8, 8), objective="temporal"
        )
    assert err.shape == w.shape == (1, 1, 8, 8)  # one pair: latent frames 1 and 2
