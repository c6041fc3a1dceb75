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
