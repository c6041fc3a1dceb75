"""Correctness oracle: our exact (unprojected) cosine scores against dattri's Grad-Cos attributor.

dattri (https://github.com/TRAIS-Lab/dattri, test-only dependency) computes Grad-Cos as its
``TracInAttributor`` with one checkpoint, ``weight_list = [1]`` and ``normalized_grad=True``: per-sample
gradients by ``torch.func.vmap(grad(f))`` over a flat parameter vector, an (identity) projection, and
``normalize(train) @ normalize(test).T`` → [n_train, n_test]. Our side is ``GradientFeaturizer.gradient``
(``torch.autograd.grad``) scored by ``motive.scoring.cosine_scores``. Both differentiate the same loss,
``featurizer.loss``, so this checks the gradient + cosine machinery, not a re-derived loss.

dattri normalises and multiplies in the dtype of its parameter vector. In float32 that alone is off by
~1e-4 here: torch's CPU float32 ``norm`` over D ≈ 1M entries has ~1e-4 relative error (the dot products
~3e-5), far above the 1e-5 this oracle asks for. So dattri gets a float64 copy of the parameters, and
the loss casts them back to float32 before the forward pass: the forward/backward math is exactly our
float32 one (the float32 gradient is cast to float64 on the way out) and only dattri's normalisation and
dot products run in float64, as ``cosine_scores`` does.
"""

from __future__ import annotations

import copy

import pytest
import torch

from motive.gradients import GradientConfig, GradientFeaturizer
from motive.scoring import cosine_scores

LATENT = (16, 5, 8, 8)  # C, f, h, w of the tiny model at 17 frames of 64×64
FRAMES = 17
N_TRAIN, N_TEST = 4, 2


class _FeaturizerLoss(torch.nn.Module):
    """``featurizer.loss`` as a module, so ``torch.func.functional_call`` can swap the transformer's
    parameters for functional ones while our own loss code runs unchanged."""

    def __init__(self, featurizer: GradientFeaturizer):
        super().__init__()
        self.transformer = featurizer.model.transformer
        self.featurizer = featurizer  # not a Module: no parameters of its own

    def forward(self, h: torch.Tensor, text: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return self.featurizer.loss(h, text, weight)


def _clips(n: int, text_shape: tuple[int, ...], seed: int) -> list[torch.Tensor]:
    """n clips as stacked (latent [n, C, f, h, w], text [n, L, D], mask [n, f, h, w])."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, *LATENT, generator=g)
    text = torch.randn(n, *text_shape, generator=g)
    w = torch.rand(n, *LATENT[1:], generator=g)
    return [h, text, w]


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # SDPA under vmap
def test_exact_cosine_matches_dattri_grad_cos(tiny_model, monkeypatch):
    pytest.importorskip("dattri", reason="dattri (test-only dependency) is not installed")
    from dattri.algorithm import tracin
    from dattri.task import AttributionTask

    feat = GradientFeaturizer(tiny_model, GradientConfig(), LATENT, frames=FRAMES)
    assert feat.config.sigma == 0.751 and feat.config.noise_draws == 1 and feat.config.use_mask
    text_shape = tuple(tiny_model.encode_text(["a red ball"]).shape[1:])
    train = _clips(N_TRAIN, text_shape, seed=1)
    test = _clips(N_TEST, text_shape, seed=2)

    # ours: exact flat gradients, one clip at a time, then cosine
    def grads(clips):
        return torch.stack([feat.gradient(*(x[i : i + 1] for x in clips)) for i in range(len(clips[0]))])

    g_train, g_test = grads(train), grads(test)
    ours = torch.from_numpy(cosine_scores(g_train.numpy(), g_test.numpy()))  # [n_train, n_test]

    # dattri: f(params, data) with data = one clip (vmap strips the batch dimension)
    wrapper = _FeaturizerLoss(feat)

    def loss(params: dict[str, torch.Tensor], data: tuple[torch.Tensor, ...]) -> torch.Tensor:
        h, text, w = (x.unsqueeze(0) for x in data)
        named = {f"transformer.{k}": v.float() for k, v in params.items()}  # float64 → our float32
        return torch.func.functional_call(wrapper, named, (h, text, w))

    # names, shapes, requires_grad flags and float64 values of the transformer's parameters
    shadow = copy.deepcopy(tiny_model.transformer)
    for p in shadow.parameters():  # not .double(): diffusers warns about its float32-only modules
        p.data = p.data.double()
    task = AttributionTask(
        loss_func=loss,
        model=shadow,
        checkpoints=[{}],
        checkpoints_load_func=lambda model, _: model,  # the shadow itself is the only checkpoint
    )
    # TracInAttributor updates its module-level DEFAULT_PROJECTOR_KWARGS in place: give it a copy.
    monkeypatch.setattr(tracin, "DEFAULT_PROJECTOR_KWARGS", dict(tracin.DEFAULT_PROJECTOR_KWARGS))
    grad_cos = tracin.TracInAttributor(
        task=task,
        weight_list=torch.ones(1),
        normalized_grad=True,
        projector_kwargs={"proj_type": "identity"},  # no projection: exact gradients
        device="cpu",
    )
    loader = torch.utils.data.DataLoader  # default sampler is sequential (no shuffle)
    train_loader = loader(torch.utils.data.TensorDataset(*train), batch_size=N_TRAIN)
    test_loader = loader(torch.utils.data.TensorDataset(*test), batch_size=N_TEST)
    theirs = grad_cos.attribute(train_loader, test_loader)

    # dattri differentiated the parameters our featurizer uses, in the same order
    params, _ = task.get_param(0)
    assert params.dtype == torch.float64 and params.numel() == feat.dim == g_train.shape[1]
    assert [n for n, _ in feat.params] == list(task.named_parameters)

    assert theirs.shape == ours.shape == (N_TRAIN, N_TEST)  # rows = train clips, columns = queries
    diff = (theirs - ours).abs().max().item()
    assert diff <= 1e-5, f"max |dattri Grad-Cos - exact cosine| = {diff:.3g}\nours={ours}\ndattri={theirs}"

    # the agreement is not trivial: each train clip and each query changes the scores by far more than
    # the tolerance, so a swapped clip, a transposed matrix or a constant score would fail
    assert ours.abs().max() < 0.999
    assert (ours[:, None, :] - ours[None, :, :]).abs().amax(dim=2).add(torch.eye(N_TRAIN)).min() > 1e-3
    assert (ours[:, 0] - ours[:, 1]).abs().max() > 1e-3
