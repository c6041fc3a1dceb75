"""Block-wise Fastfood Johnson–Lindenstrauss projection (METHOD.md §5), our own implementation.

One block of size n = 2^k maps x ∈ R^n to R^{D'}:

    P_j x = (1 / sqrt(D'·n)) · R · S · H · G · Π · H · B · x

B: random ±1 diagonal; H: Walsh–Hadamard (unnormalised, computed by the fast transform); Π: random
permutation; G: Gaussian diagonal; S: diag(s_i / ‖G‖_F · sqrt(n)) with s_i ~ χ_n, which gives rows the
norm distribution of a dense Gaussian matrix; R: keeps D' of the n rows. With this scaling
E‖P_j x‖² = ‖x‖². A vector longer than one block is split into blocks (the last zero-padded), each
block gets its own independently seeded (B, Π, G, S, R), and the projections are SUMMED: P = [P_1 …
P_m] is still a JL map. All randomness comes from one seed and is generated on the CPU, so the same
seed gives the same matrix on any device.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch


def fwht(x: torch.Tensor) -> torch.Tensor:
    """Unnormalised fast Walsh–Hadamard transform along the last dim (a power of two). [..., n] → [..., n]."""
    n = x.shape[-1]
    if n & (n - 1):
        raise ValueError(f"FWHT length must be a power of two, got {n}")
    lead = x.shape[:-1]
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        y = y.view(-1, n // (2 * h), 2, h)
        a, b = y[:, :, 0, :], y[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2)
        h *= 2
    return y.reshape(*lead, n)


def next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


@dataclass(frozen=True)
class FastfoodSpec:
    """What defines a projection; stored with every feature store and checked on reuse."""

    d_in: int
    d_out: int = 512
    seed: int = 0
    max_block: int = 2**20

    @property
    def block(self) -> int:
        """Block length: a power of two ≥ d_out, ≤ max_block unless d_out needs more."""
        return max(next_pow2(self.d_out), min(next_pow2(self.d_in), self.max_block))

    @property
    def num_blocks(self) -> int:
        return math.ceil(self.d_in / self.block)

    def to_dict(self) -> dict:
        return {"type": "fastfood", **asdict(self), "block": self.block, "num_blocks": self.num_blocks}


@dataclass
class _Block:
    signs: torch.Tensor  # [n] ±1 (B)
    perm: torch.Tensor  # [n] permutation (Π)
    gauss: torch.Tensor  # [n] (G)
    scale: torch.Tensor  # [D'] (S on the kept rows, times the global 1/sqrt(D'·n))
    rows: torch.Tensor  # [D'] kept row indices (R)


class Fastfood:
    """``Fastfood(d_in, d_out, seed)``: callable on ``[N, d_in]`` → ``[N, d_out]`` (float32).

    ``project_block(x_j, j)`` projects one block's slice; summing over blocks equals ``__call__``, which
    is how a gradient can be projected piece by piece without ever being flattened in full.
    """

    def __init__(self, d_in: int, d_out: int = 512, seed: int = 0, max_block: int = 2**20):
        if d_in < 1 or d_out < 1:
            raise ValueError("d_in and d_out must be positive")
        self.spec = FastfoodSpec(d_in, d_out, seed, max_block)
        self._blocks: dict[int, _Block] = {}

    @property
    def d_in(self) -> int:
        return self.spec.d_in

    @property
    def d_out(self) -> int:
        return self.spec.d_out

    def _block(self, j: int) -> _Block:
        if j not in self._blocks:
            n, d = self.spec.block, self.spec.d_out
            ss = np.random.SeedSequence([self.spec.seed, j])
            rng = np.random.default_rng(ss)
            signs = rng.integers(0, 2, n).astype(np.float32) * 2 - 1
            perm = rng.permutation(n)
            gauss = rng.standard_normal(n)
            chi = np.sqrt(rng.chisquare(n, n))
            rows = np.sort(rng.choice(n, size=d, replace=False))
            # S_ii = s_i / ‖G‖_F has E[S_ii²] ≈ 1; each row of H G Π H B x has E‖·‖² = n‖x‖², so the
            # kept D' rows scaled by 1/sqrt(D'·n) give E‖P_j x‖² = ‖x‖².
            scale = chi / np.linalg.norm(gauss) / math.sqrt(d * n)
            self._blocks[j] = _Block(
                torch.from_numpy(signs),
                torch.from_numpy(perm),
                torch.from_numpy(gauss.astype(np.float32)),
                torch.from_numpy(scale[rows].astype(np.float32)),
                torch.from_numpy(rows),
            )
        return self._blocks[j]

    def project_block(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Project the j-th block slice ``[N, ≤ block]`` (zero-padded to the block) → ``[N, d_out]``."""
        b = self._block(j)
        n = self.spec.block
        x = x.float()
        if x.shape[-1] < n:
            x = torch.nn.functional.pad(x, (0, n - x.shape[-1]))
        dev = x.device
        y = fwht(x * b.signs.to(dev))
        y = y[:, b.perm.to(dev)] * b.gauss.to(dev)
        y = fwht(y)
        return y[:, b.rows.to(dev)] * b.scale.to(dev)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, d_in]`` → ``[N, d_out]``."""
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"expected [N, {self.d_in}], got {tuple(x.shape)}")
        n = self.spec.block
        out = torch.zeros(x.shape[0], self.d_out, device=x.device)
        for j in range(self.spec.num_blocks):
            out += self.project_block(x[:, j * n : (j + 1) * n], j)
        return out

    def dense(self) -> torch.Tensor:
        """The explicit matrix ``[d_out, d_in]`` (small d_in only; used by tests to prove equality)."""
        if self.d_in > 2**14:
            raise ValueError("dense() is for small d_in (≤ 16384)")
        return self(torch.eye(self.d_in)).T.contiguous()


def l2_normalise(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows to unit length (zero rows stay zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)
