"""Block-wise Fastfood Johnson–Lindenstrauss projection (docs/method.md §5), our own implementation.

One block of size n = 2^k maps x ∈ R^n to R^{D'}:

    P_j x = (1 / sqrt(D'·n)) · R · S · H · G · Π · H · B · x

B: random ±1 diagonal; H: Walsh–Hadamard (unnormalised, computed by the fast transform); Π: random
permutation; G: Gaussian diagonal; S: diag(s_i / ‖G‖_F · sqrt(n)) with s_i ~ χ_n, which gives rows the
norm distribution of a dense Gaussian matrix; R: keeps D' of the n rows, all sharing their high bits
(one coset of the first D' Walsh indices, the coset drawn per block: with G Gaussian any D' distinct
rows give the same JL guarantee), so the second H is computed for the kept rows only — a signed sum
of the n/D' row groups and one length-D' transform, about half the cost of a full one. With this scaling
E‖P_j x‖² = ‖x‖². A vector longer than one block is split into blocks (the last zero-padded), each
block gets its own independently seeded (B, Π, G, S, R), and the projections are SUMMED: P = [P_1 …
P_m] is still a JL map. All randomness comes from one seed and is generated on the CPU, so the same
seed gives the same matrix on any device.

``StreamingProjector`` builds P·g from pieces of g that arrive in any order (one parameter's gradient
at a time, from backward hooks), so a model's flat gradient is never materialised. Per-block results
are kept and summed in block order at the end, so streaming and whole-vector projection agree to fp32
rounding whatever order the pieces come in.
"""

from __future__ import annotations

import math
import os
import weakref
from dataclasses import asdict, dataclass

import numpy as np
import torch

HADAMARD_FACTOR = 64  # the FWHT multiplies by H_64 along successive factors (matmul, BLAS-fast)
CHUNK_BLOCKS = 16  # blocks projected together on CPU (bounds the temporaries to 16 blocks)
# On a GPU a chunk of 16 blocks is a few microseconds of work and the call is bound by kernel launches
# and Python (BENCHMARKS.md "Wan2.1-T2V-1.3B on a GPU" measures both chunk sizes), so chunks are larger
# there (temporaries ≈ 1.5 MB per 2^16 block — fp32 values, int64 permutation index, gather output —
# so ~0.4 GB at 256 blocks).
GPU_CHUNK_BLOCKS = 256
# Kept tables stay on an accelerator when they take at most this share of its free memory, else they
# live in pinned host memory and each chunk's slice is copied over as it is needed (Wan2.2-A14B's
# 14B-parameter expert has 70 GB of tables; a 24 GB card holding Wan2.1-1.3B's 6.5 GB would be tight).
DEVICE_TABLE_SHARE = 0.25
TABLES = "v2/coset-rows/int8-signs/int16-perm/fp16-gauss"  # how the randomness is drawn and stored (store identity)


def fwht_butterfly(x: torch.Tensor) -> torch.Tensor:
    """Reference radix-2 butterflies, unnormalised, along the last dim (a power of two)."""
    n = _check_pow2(x.shape[-1])
    lead = x.shape[:-1]
    y = x.reshape(-1, n)
    h = 1
    while h < n:
        y = y.view(-1, n // (2 * h), 2, h)
        a, b = y[:, :, 0, :], y[:, :, 1, :]
        y = torch.stack((a + b, a - b), dim=2)
        h *= 2
    return y.reshape(*lead, n)


_HADAMARD: dict[tuple[int, torch.dtype, str], torch.Tensor] = {}


def hadamard(m: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """The Sylvester Hadamard matrix ``[m, m]`` (cached per dtype/device)."""
    key = (m, dtype, str(device))
    if key not in _HADAMARD:
        h = torch.ones(1, 1, dtype=dtype)
        while h.shape[0] < m:
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
        _HADAMARD[key] = h.to(device)
    return _HADAMARD[key]


def fwht(x: torch.Tensor, factor: int = HADAMARD_FACTOR) -> torch.Tensor:
    """Unnormalised fast Walsh–Hadamard transform along the last dim (a power of two). [..., n] → [..., n].

    H_n = H_m ⊗ H_m ⊗ … (Kronecker), so the transform is a few matmuls by a small H_m along
    successive factors of n: on CPU faster than butterflies above 2^20 (BENCHMARKS.md "Fastfood vs dense projection"), a GEMM on GPU.
    """
    n = _check_pow2(x.shape[-1])
    lead = x.shape[:-1]
    y = x.reshape(-1, n)
    rows, inner = y.shape[0], 1  # `inner` = product of the factors already transformed
    while inner < n:
        m = min(factor, n // inner)
        h = hadamard(m, y.dtype, y.device)
        if inner == 1:
            y = y.reshape(-1, m) @ h  # H is symmetric
        else:
            y = torch.matmul(h, y.reshape(rows * (n // (m * inner)), m, inner))
        inner *= m
    return y.reshape(*lead, n)


def _parity(x: torch.Tensor) -> torch.Tensor:
    """Parity of the set bits of non-negative int64 ``x`` (so H[i, j] = (−1)^parity(i & j))."""
    for shift in (32, 16, 8, 4, 2, 1):
        x = x ^ (x >> shift)
    return x & 1


def _check_pow2(n: int) -> int:
    if n < 1 or n & (n - 1):
        raise ValueError(f"FWHT length must be a power of two, got {n}")
    return n


def next_pow2(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


@dataclass(frozen=True)
class FastfoodSpec:
    """What defines a projection; stored with every feature store and checked on reuse."""

    d_in: int
    d_out: int = 512
    seed: int = 0
    max_block: int = 2**16

    @property
    def block(self) -> int:
        """Block length: a power of two ≥ d_out, ≤ max_block unless d_out needs more."""
        return max(next_pow2(self.d_out), min(next_pow2(self.d_in), self.max_block))

    @property
    def num_blocks(self) -> int:
        return math.ceil(self.d_in / self.block)

    @property
    def perm_offset(self) -> int:
        """Π is stored as int16 minus this offset when a block has at most 2^16 entries, else int32."""
        return 2**15 if self.block <= 2**16 else 0

    def to_dict(self) -> dict:
        return {
            "type": "fastfood",
            "tables": TABLES,
            **asdict(self),
            "block": self.block,
            "num_blocks": self.num_blocks,
        }


def _block_randomness(seed: int, j: int, n: int, d: int) -> tuple[np.ndarray, ...]:
    """(signs, perm, gauss, scale, rows) of block j, from SeedSequence([seed, j]) on the CPU (a
    permutation and n Gaussians per block; χ is drawn for the kept rows only)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, j]))
    bits = np.unpackbits(np.frombuffer(rng.bytes(-(-n // 8)), np.uint8))[:n]
    signs = bits.astype(np.int8) * 2 - 1
    perm = rng.permutation(n)
    gauss = rng.standard_normal(n, dtype=np.float32)  # G; kept in fp16 (rounded by torch: fast)
    dp = next_pow2(d)
    rows = rng.integers(n // dp) * dp + np.sort(rng.choice(dp, size=d, replace=False))  # one coset
    chi = np.sqrt(rng.chisquare(n, d))  # s_i ~ χ_n of the kept rows
    # S_ii = s_i / ‖G‖_F has E[S_ii²] ≈ 1; each row of H G Π H B x has E‖·‖² = n‖x‖², so the kept D'
    # rows scaled by 1/sqrt(D'·n) give E‖P_j x‖² = ‖x‖².
    g_norm = math.sqrt(np.square(gauss, dtype=np.float64).sum())  # ‖G‖ before fp16 rounding; no BLAS
    scale = chi / g_norm / math.sqrt(d * n)  # (numpy's BLAS dot took ms per call beside torch's threads)
    return signs, perm, gauss, scale, rows


class Fastfood:
    """``Fastfood(d_in, d_out, seed)``: callable on ``[N, d_in]`` → ``[N, d_out]`` (float32).

    The per-block randomness is generated on the CPU on first use. With ``keep_tables`` (default) it
    is kept in compact form — int8 signs, int16 permutation (int32 for blocks above 2^16) and fp16
    Gaussians: 5 bytes per input coordinate — so it is generated once; on ``table_device`` (default:
    the projection's device, or pinned host memory when they would take more than
    ``DEVICE_TABLE_SHARE`` of an accelerator's free memory), copied to the device a chunk at a time.
    Without, it is regenerated for every call and dropped: memory bounded by ``chunk_blocks`` blocks
    whatever the model size, at the cost of regenerating it (CPU time per block per call). Both give identical
    results. ``block_outputs`` projects whole blocks; summing them in block order is ``__call__``.
    ``chunk_blocks``: blocks projected together (default ``CHUNK_BLOCKS`` on CPU, ``GPU_CHUNK_BLOCKS``
    elsewhere); it changes speed and memory, not the result.
    """

    def __init__(
        self,
        d_in: int,
        d_out: int = 512,
        seed: int = 0,
        max_block: int = 2**16,
        device: torch.device | str = "cpu",
        keep_tables: bool = True,
        chunk_blocks: int | None = None,
        table_device: torch.device | str | None = None,
    ):
        if d_in < 1 or d_out < 1:
            raise ValueError("d_in and d_out must be positive")
        self.spec = FastfoodSpec(d_in, d_out, seed, max_block)
        self.device = torch.device(device)
        m_all = self.spec.num_blocks
        full = m_all * (self.spec.block * 5 + d_out * 12)  # bytes of every block's tables
        self.table_device = (
            torch.device(table_device) if table_device else default_table_device(self.device, full)
        )
        # an explicit GPU: the threads of prepare_all would otherwise start on GPU 0
        if self.table_device.type == "cuda" and self.table_device.index is None:
            self.table_device = torch.device("cuda", torch.cuda.current_device())
        pin = self.table_device.type == "cpu" and self.device.type == "cuda"
        self.chunk_blocks = chunk_blocks or (CHUNK_BLOCKS if self.device.type == "cpu" else GPU_CHUNK_BLOCKS)
        self.keep_tables = keep_tables
        self.peak_transient_nbytes = 0  # most randomness generated for one call without keep_tables
        m, n, d = (m_all if keep_tables else 0), self.spec.block, d_out
        # B [m, n], Π − offset [m, n], G [m, n], S·R and 1/sqrt(D'·n) [m, D'], R [m, D']
        layout = [
            (torch.int8, n),
            (self._perm_dtype, n),
            (torch.float16, n),
            (torch.float32, d),
            (torch.int64, d),
        ]
        self._buffer, tables = table_buffer(m, layout, self.table_device, pin)
        self._signs, self._perm, self._gauss, self._scale, self._rows = tables
        self._ready = np.zeros(m, bool)

    @property
    def d_in(self) -> int:
        return self.spec.d_in

    @property
    def d_out(self) -> int:
        return self.spec.d_out

    @property
    def _perm_dtype(self) -> torch.dtype:
        return torch.int16 if self.spec.perm_offset else torch.int32

    @property
    def nbytes(self) -> int:
        """Bytes of randomness held between calls (0 without ``keep_tables``)."""
        return sum(
            t.numel() * t.element_size()
            for t in (self._signs, self._perm, self._gauss, self._scale, self._rows)
        )

    def _compact(self, j: int, device: torch.device | None = None) -> tuple[torch.Tensor, ...]:
        """Block j's randomness in its stored dtypes, on ``device`` (default: the projection's)."""
        signs, perm, gauss, scale, rows = _block_randomness(
            self.spec.seed, j, self.spec.block, self.spec.d_out
        )
        parts = (signs, perm - self.spec.perm_offset, gauss, scale, rows)
        dtypes = (torch.int8, self._perm_dtype, torch.float16, torch.float32, torch.int64)
        return tuple(torch.from_numpy(x).to(device or self.device, dt) for x, dt in zip(parts, dtypes))

    def prepare_all(self, progress: bool = False, threads: int | None = None) -> None:
        """Generate every block's randomness now, so later calls exclude it; ``progress`` shows a bar.
        Blocks are independent (each from its own seed) and numpy's generators and torch's copies
        release the GIL, so ``threads`` (default: the cores this process may use, shared among the
        ranks torchrun started on this machine) build them at once, each writing its own rows: the
        same tables as one by one. Needs ``keep_tables``."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        if not self.keep_tables:
            raise ValueError("prepare_all() keeps the randomness; this projection has keep_tables=False")
        local_ranks = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # torchrun: ranks on this machine
        threads = threads or max(1, len(os.sched_getaffinity(0)) // local_ranks)
        m, step = self.spec.num_blocks, self.chunk_blocks
        chunks = [list(range(j, min(j + step, m))) for j in range(0, m, step)]
        bar = tqdm(total=m, desc="projection tables", disable=not progress)
        with ThreadPoolExecutor(threads) as pool:
            for ids in pool.map(self._fill, chunks):
                bar.update(len(ids))
        bar.close()

    def _fill(self, ids: list[int]) -> list[int]:
        """Generate the kept randomness of blocks ``ids`` not generated yet (each block's own rows)."""
        tables = (self._signs, self._perm, self._gauss, self._scale, self._rows)
        for j in ids:
            if not self._ready[j]:
                for dst, src in zip(tables, self._compact(j, self.table_device)):
                    dst[j] = src
                self._ready[j] = True
        return ids

    def _tables(self, ids: list[int]) -> tuple[torch.Tensor, ...]:
        """(signs, perm − offset, gauss, scale, rows) of blocks ``ids``, each ``[J, ...]``."""
        if not self.keep_tables:
            parts = [torch.stack(p) for p in zip(*(self._compact(j) for j in ids))]
            self.peak_transient_nbytes = max(
                self.peak_transient_nbytes, sum(t.numel() * t.element_size() for t in parts)
            )
            return tuple(parts)
        self._fill(ids)
        tables = (self._signs, self._perm, self._gauss, self._scale, self._rows)
        # consecutive blocks are a view of the tables; a scattered list is gathered once
        J = len(ids)
        sel = (
            slice(ids[0], ids[0] + J)
            if ids == list(range(ids[0], ids[0] + J))
            else torch.tensor(ids, device=self.table_device)
        )
        return tuple(t[sel].to(self.device, non_blocking=True) for t in tables)  # a no-op on one device

    def block_outputs(self, x: torch.Tensor, blocks: int | list[int]) -> torch.Tensor:
        """Project whole blocks ``x [..., J, block]`` → ``[..., J, D']``. ``blocks``: the first of J
        consecutive block numbers, or a list of J block numbers."""
        lead, J, n = x.shape[:-2], x.shape[-2], self.spec.block
        ids = list(range(blocks, blocks + J)) if isinstance(blocks, int) else list(blocks)
        if x.shape[-1] != n or len(ids) != J or min(ids) < 0 or max(ids) >= self.spec.num_blocks:
            raise ValueError(
                f"expected [..., {len(ids)}, {n}] for blocks {ids[:4]}… of {self.spec.num_blocks}"
            )
        signs, perm, gauss, scale, rows = self._tables(ids)
        y = fwht(x.float().to(self.device) * signs)  # [..., J, n]
        perm = perm.to(torch.int64).add_(self.spec.perm_offset).expand(*lead, J, n)  # int64 for gather
        y = torch.gather(y, -1, perm) * gauss.float()  # [..., J, n]
        # H_n = H_{n/d'} ⊗ H_d', and the kept rows are head·d' + c: (H_n y)[head·d' + c] =
        # (H_d' · Σ_a H_{n/d'}[head, a] · y[a, :])[c] — only the kept rows' transform is computed
        dp = next_pow2(self.spec.d_out)
        head = rows[:, :1] // dp  # [J, 1]
        walsh = 1.0 - 2.0 * _parity(head & torch.arange(n // dp, device=self.device)).float()  # [J, n/d']
        y = (walsh.unsqueeze(-2) @ y.reshape(*lead, J, n // dp, dp)).squeeze(-2)  # [..., J, d']
        y = fwht(y)
        return torch.gather(y, -1, (rows % dp).expand(*lead, J, self.spec.d_out)) * scale  # [..., J, D']

    def project_block(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Project the j-th block slice ``[N, ≤ block]`` (zero-padded to the block) → ``[N, d_out]``."""
        n = self.spec.block
        if x.shape[-1] < n:
            x = torch.nn.functional.pad(x.float(), (0, n - x.shape[-1]))
        return self.block_outputs(x[:, None], j)[:, 0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, d_in]`` → ``[N, d_out]``."""
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"expected [N, {self.d_in}], got {tuple(x.shape)}")
        n, m = self.spec.block, self.spec.num_blocks
        full = self.d_in // n  # whole blocks; a short last block is padded on its own (no copy of x)
        blocks = x[:, : full * n].reshape(x.shape[0], full, n)  # [N, full, n]
        outs = [
            self.block_outputs(blocks[:, j : min(j + self.chunk_blocks, full)], j)
            for j in range(0, full, self.chunk_blocks)
        ]
        if full < m:
            outs.append(self.project_block(x[:, full * n :], full)[:, None])
        return torch.cat(outs, dim=1).sum(dim=1)  # [N, D'], summed in block order

    def dense(self) -> torch.Tensor:
        """The explicit matrix ``[d_out, d_in]`` (small d_in only; used by tests to prove equality)."""
        if self.d_in > 2**14:
            raise ValueError("dense() is for small d_in (≤ 16384)")
        return self(torch.eye(self.d_in, device=self.device)).T.contiguous()


class StreamingProjector:
    """Accumulates ``P·g`` from pieces of the flat vector g that arrive in any order.

    ``sizes[i]`` is the length of piece i (a parameter's gradient) in g's layout. ``add(i, piece)``
    projects every block the piece covers entirely at once and parks the edges of blocks it shares
    with other pieces until those are complete; completed parked blocks are projected together,
    the projection's ``chunk_blocks`` at a time. Memory beyond the projection's randomness: the blocks
    straddling pieces still missing (in practice a handful) plus at most ``chunk_blocks`` in flight.
    """

    def __init__(self, projection: Fastfood, sizes: list[int]):
        if sum(sizes) != projection.d_in:
            raise ValueError(f"pieces sum to {sum(sizes)}, the projection takes {projection.d_in}")
        self.projection = projection
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.peak_pending = 0  # most parked blocks at once (memory check)
        self.reset()

    def reset(self) -> None:
        """Start a new vector."""
        spec = self.projection.spec
        self._out = torch.zeros(spec.num_blocks, spec.d_out, device=self.projection.device)  # [m, D']
        self._pending: dict[int, tuple[torch.Tensor, int]] = {}  # block → (buffer [n], filled)
        self._ready: list[tuple[int, torch.Tensor]] = []  # completed parked blocks, projected in batches
        self._seen = np.zeros(len(self.offsets) - 1, bool)
        self.sq_norm = 0.0

    def add(self, i: int, piece: torch.Tensor) -> None:
        """Piece i of the vector (any shape; flattened in row-major order)."""
        n = self.projection.spec.block
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        g = piece.detach().reshape(-1).float().to(self.projection.device)
        if g.numel() != hi - lo:
            raise ValueError(f"piece {i} has {g.numel()} values, expected {hi - lo}")
        if self._seen[i]:
            raise ValueError(f"piece {i} was already added")
        self._seen[i] = True
        self.sq_norm += float(g.double().pow(2).sum())
        first_full, last_full = -(-lo // n), hi // n  # blocks [first_full, last_full) lie inside the piece
        if first_full < last_full:
            inner = g[first_full * n - lo : last_full * n - lo].view(-1, n)  # [J, n]
            for j in range(first_full, last_full, self.projection.chunk_blocks):
                k = min(j + self.projection.chunk_blocks, last_full)
                self._store(j, self.projection.block_outputs(inner[j - first_full : k - first_full], j))
            edges = {lo // n, (hi - 1) // n} - set(range(first_full, last_full))
        else:
            edges = set(range(lo // n, (hi - 1) // n + 1))
        for j in sorted(edges):
            a, b = max(lo, j * n), min(hi, (j + 1) * n)
            buf, filled = self._pending.get(j, (None, 0))
            if buf is None:
                buf = torch.zeros(n, device=self.projection.device)
            buf[a - j * n : b - j * n] = g[a - lo : b - lo]
            self._pending[j] = (buf, filled + b - a)
            if filled + b - a == self._block_len(j):
                self._ready.append((j, self._pending.pop(j)[0]))
        self.peak_pending = max(self.peak_pending, len(self._pending) + len(self._ready))
        if len(self._ready) >= self.projection.chunk_blocks:
            self._flush()

    def _flush(self) -> None:
        """Project the completed parked blocks together."""
        if self._ready:
            ids = [j for j, _ in self._ready]
            out = self.projection.block_outputs(torch.stack([buf for _, buf in self._ready]), ids)  # [J, D']
            self._out[ids] = out
            self._ready.clear()

    def _block_len(self, j: int) -> int:
        n = self.projection.spec.block
        return min(n, self.projection.d_in - j * n)

    def _store(self, j0: int, out: torch.Tensor) -> None:
        self._out[j0 : j0 + out.shape[0]] = out

    def result(self) -> torch.Tensor:
        """``P·g`` [D']; pieces never added count as zeros (parameters that got no gradient)."""
        self._ready += [(j, self._pending[j][0]) for j in sorted(self._pending)]
        self._pending.clear()
        self._flush()
        return self._out.sum(dim=0)  # blocks never touched are zero rows


TABLE_ALIGN = 64  # bytes: each table of the one buffer starts on a cache line


def table_buffer(
    m: int, layout: list[tuple[torch.dtype, int]], device: torch.device, pin: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One allocation holding ``m`` rows of every table: (buffer [bytes] uint8, a view [m, width] of
    each (dtype, width) in ``layout``). One buffer, not one per table: torch's pinned host allocator
    rounds every allocation up to a power of two (~81 GiB for Wan2.2-A14B's 70 GB of tables in five),
    so with ``pin`` the buffer is allocated as ordinary host memory of its exact size and page-locked
    in place (``cudaHostRegister``; unregistered when the buffer is freed)."""
    offsets, total = [], 0
    for dtype, width in layout:
        total = -(-total // TABLE_ALIGN) * TABLE_ALIGN
        offsets.append(total)
        total += m * width * dtype.itemsize
    buffer = torch.empty(total, dtype=torch.uint8, device=device)
    if pin and total:
        _page_lock(buffer)
    views = [buffer[o : o + m * w * dt.itemsize].view(dt).view(m, w) for o, (dt, w) in zip(offsets, layout)]
    return buffer, views


def _page_lock(buffer: torch.Tensor) -> None:
    """Page-lock host ``buffer`` for asynchronous copies to the GPU until it is freed."""
    cudart = torch.cuda.cudart()
    ptr = buffer.data_ptr()
    torch.cuda.check_error(cudart.cudaHostRegister(ptr, buffer.numel(), 0))
    weakref.finalize(buffer, cudart.cudaHostUnregister, ptr)


def default_table_device(device: torch.device, nbytes: int) -> torch.device:
    """Where kept tables of ``nbytes`` go: the projection's device, unless it is an accelerator on
    which they would take more than ``DEVICE_TABLE_SHARE`` of the free memory (then host memory)."""
    if device.type != "cuda":
        return device
    free, _ = torch.cuda.mem_get_info(device)
    return device if nbytes <= DEVICE_TABLE_SHARE * free else torch.device("cpu")


def l2_normalise(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Rows to unit length (zero rows stay zero). The norm is summed in float64: torch's fp32 CPU
    ``norm`` is ~1e-4 too small on million-long gradients, enough to skew exact cosines."""
    norm = x.double().pow(2).sum(dim=-1, keepdim=True).sqrt().clamp_min(eps)
    return (x.double() / norm).to(x.dtype)
