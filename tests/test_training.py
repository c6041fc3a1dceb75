import torch

from motive.loss import per_sample_loss
from motive.training import EncodedData, TrainConfig, shifted_sigmas, train_flow_matching


def test_shifted_sigmas_monotone_and_bounded():
    u = torch.linspace(0.01, 0.99, 50)
    s = shifted_sigmas(u, 3.0)
    assert torch.all(s[1:] > s[:-1]) and s.min() > 0 and s.max() < 1
    assert torch.all(s >= u)  # shift > 1 moves mass to high noise
    torch.testing.assert_close(shifted_sigmas(u, 1.0), u)


def test_training_steps_decrease_loss_on_fixed_batch():
    from motive.models.tiny import build_tiny_model

    model = build_tiny_model(seed=1)
    torch.manual_seed(0)
    data = EncodedData(torch.randn(4, 16, 5, 8, 8), torch.tensor([0, 1, 0, 1]), ["a red ball", "a blue box"])
    sigma, eps = torch.full((4,), 0.5), torch.randn(4, 16, 5, 8, 8)
    text = model.encode_text(data.prompts)[data.prompt_ids]

    def fixed_loss():
        with torch.no_grad():
            return per_sample_loss(model, data.latents, text, sigma, eps).mean().item()

    before = fixed_loss()
    losses = train_flow_matching(
        model, data, TrainConfig(steps=30, batch_size=4, warmup=1, prompt_dropout=0.0), progress=False
    )
    after = fixed_loss()
    assert len(losses) == 30
    assert after < before * 0.9, (before, after)


def test_cell_weights_of_one_change_nothing_and_others_reweight_the_loss():
    from motive.models.tiny import build_tiny_model

    torch.manual_seed(0)
    latents, ids, prompts = (
        torch.randn(4, 16, 5, 8, 8),
        torch.tensor([0, 1, 0, 1]),
        ["a red ball", "a blue box"],
    )
    config = TrainConfig(steps=3, batch_size=2, warmup=1, prompt_dropout=0.0)

    def run(weights):
        model = build_tiny_model(seed=1)
        losses = train_flow_matching(
            model, EncodedData(latents, ids, prompts, weights), config, progress=False
        )
        return losses, next(model.transformer.parameters()).detach().clone()

    plain, p0 = run(None)
    ones, p1 = run(torch.ones(4, 5, 8, 8))
    assert plain == ones and torch.equal(p0, p1)
    double, _ = run(torch.full((4, 5, 8, 8), 2.0))
    assert double[0] == 2 * plain[0]  # the first step's loss, before any update differs
    spot = torch.zeros(4, 5, 8, 8)
    spot[..., :2, :2] = 1.0
    weighted, p3 = run(spot)
    assert weighted[0] < plain[0] and not torch.equal(p0, p3)
