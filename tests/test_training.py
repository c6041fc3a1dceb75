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


def _rank_training(rank: int, store: str, result: str) -> None:
    """Rank ``rank`` of 2 (gloo): two steps of ``train_flow_matching``, every collective's tensor recorded."""
    import json

    import torch.distributed as dist

    from motive.models.tiny import build_tiny_model
    from motive.parallel import backend_devices

    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store, 2), rank=rank, world_size=2)
    seen, reduce = [], dist.all_reduce

    def recording(tensor, *args, **kwargs):
        seen.append([tensor.device.type, str(tensor.dtype), tensor.numel(), sorted(backend_devices())])
        return reduce(tensor, *args, **kwargs)

    dist.all_reduce = recording
    model = build_tiny_model(seed=1)
    torch.manual_seed(0)
    data = EncodedData(torch.randn(4, 16, 5, 8, 8), torch.tensor([0, 1, 0, 1]), ["a red ball", "a blue box"])
    losses = train_flow_matching(model, data, TrainConfig(steps=2, batch_size=1, warmup=1), progress=False)
    with open(f"{result}.{rank}", "w") as fh:
        json.dump({"device": model.device.type, "seen": seen, "losses": losses}, fh)
    dist.destroy_process_group()


def test_every_collective_of_a_two_rank_run_gets_a_tensor_on_the_training_device(tmp_path):
    """Under NCCL a CPU tensor in a collective crashes the first step (the summed loss was one): each
    tensor a rank reduces — gradient buckets and the loss — is on the training device, one the group
    has a backend for, and both ranks log the same summed loss."""
    import json

    from tests.audit import run_ranks

    result = str(tmp_path / "rank")
    run_ranks(_rank_training, (str(tmp_path / "store"), result))
    ranks = [json.load(open(f"{result}.{r}")) for r in range(2)]
    assert ranks[0]["losses"] == ranks[1]["losses"] and len(ranks[0]["losses"]) == 2
    for rank in ranks:
        seen = rank["seen"]
        assert ["cpu", "torch.float64", 1] in [s[:3] for s in seen]  # the summed loss, each step
        assert sum(s[1] == "torch.float32" for s in seen) >= 2  # gradient buckets
        assert all(s[0] == rank["device"] and s[0] in s[3] for s in seen), seen
