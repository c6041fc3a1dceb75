import pytest
import torch

from motive.loss import masked_mean, per_sample_loss, temporal_error


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
