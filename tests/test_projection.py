import math

import numpy as np
import pytest
import torch

from motive.projection import (
    CHUNK_BLOCKS,
    GPU_CHUNK_BLOCKS,
    Fastfood,
    FastfoodSpec,
    StreamingProjector,
    fwht,
    fwht_butterfly,
    l2_normalise,
)


def _hadamard(n):
    h = np.array([[1.0]])
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def test_fwht_matches_sylvester_hadamard():
    x = torch.randn(3, 64, dtype=torch.float64)
    np.testing.assert_allclose(fwht(x).numpy(), x.numpy() @ _hadamard(64).T, atol=1e-10)
    np.testing.assert_allclose(fwht(x, factor=4).numpy(), x.numpy() @ _hadamard(64).T, atol=1e-10)
    y = torch.randn(2, 2**13, dtype=torch.float64)  # several Kronecker factors, uneven last one
    np.testing.assert_allclose(fwht(y).numpy(), fwht_butterfly(y).numpy(), atol=1e-9)
    with pytest.raises(ValueError):
        fwht(torch.zeros(1, 12))


@pytest.mark.parametrize("d_in,d_out,max_block", [(100, 16, 2**20), (3000, 64, 1024), (7, 32, 2**20)])
def test_fastfood_equals_its_dense_matrix(d_in, d_out, max_block):
    ff = Fastfood(d_in, d_out, seed=3, max_block=max_block)
    dense = ff.dense()
    assert dense.shape == (d_out, d_in)
    x = torch.randn(5, d_in)
    torch.testing.assert_close(ff(x), x @ dense.T, rtol=1e-4, atol=1e-4)


def test_blocks_sum_to_the_whole():
    ff = Fastfood(3000, 64, seed=1, max_block=1024)
    assert ff.spec.num_blocks == 3 and ff.spec.block == 1024
    x = torch.randn(2, 3000)
    parts = sum(ff.project_block(x[:, j * 1024 : (j + 1) * 1024], j) for j in range(3))
    torch.testing.assert_close(parts, ff(x))


def test_seed_determines_projection():
    x = torch.randn(4, 500)
    a, b, c = Fastfood(500, 32, seed=0), Fastfood(500, 32, seed=0), Fastfood(500, 32, seed=1)
    torch.testing.assert_close(a(x), b(x))
    assert not torch.allclose(a(x), c(x))
    assert FastfoodSpec(500, 32, 0).to_dict()["type"] == "fastfood"


def test_johnson_lindenstrauss_sanity():
    d, k, n = 4096, 512, 64
    torch.manual_seed(0)
    x = l2_normalise(torch.randn(n, d))
    y = l2_normalise(x + 0.8 * torch.randn(n, d) / math.sqrt(d))  # correlated partners
    ff = Fastfood(d, k, seed=7)
    px, py = ff(x), ff(y)
    ratio = px.pow(2).sum(1)  # E = 1, std ≈ sqrt(2/k) = 0.0625
    assert abs(float(ratio.mean()) - 1) < 5 * math.sqrt(2 / k) / math.sqrt(n)
    assert float((ratio - 1).abs().max()) < 5 * math.sqrt(2 / k)
    dots, pdots = (x * y).sum(1), (px * py).sum(1)
    assert float((pdots - dots).abs().max()) < 5 * math.sqrt(2 / k)  # inner products preserved


def test_input_validation():
    ff = Fastfood(10, 4)
    with pytest.raises(ValueError):
        ff(torch.zeros(2, 11))
    with pytest.raises(ValueError):
        Fastfood(2**15, 8).dense()


@pytest.mark.parametrize("order", ["forward", "reverse", "shuffled"])
def test_streaming_pieces_in_any_order_equal_the_whole(order):
    sizes = [5, 1000, 3, 2048, 700, 1, 1300, 4096]  # pieces straddle, fill and span 256-blocks
    ff = Fastfood(sum(sizes), 32, seed=2, max_block=256)
    x = torch.randn(sum(sizes))
    pieces = list(torch.split(x, sizes))
    idx = list(range(len(sizes)))
    if order == "reverse":
        idx.reverse()
    elif order == "shuffled":
        idx = list(np.random.default_rng(0).permutation(idx))
    stream = StreamingProjector(ff, sizes)
    for i in idx:
        stream.add(int(i), pieces[i])
    torch.testing.assert_close(stream.result(), ff(x[None])[0], rtol=1e-5, atol=1e-5)
    assert abs(stream.sq_norm - float(x.double().pow(2).sum())) < 1e-6 * stream.sq_norm
    stream.reset()  # a missing piece counts as zeros
    for i in idx[1:]:
        stream.add(int(i), pieces[i])
    missing = x.clone()
    missing[sum(sizes[: idx[0]]) : sum(sizes[: idx[0] + 1])] = 0
    torch.testing.assert_close(stream.result(), ff(missing[None])[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        stream.add(int(idx[1]), pieces[idx[1]])  # twice
    with pytest.raises(ValueError):
        StreamingProjector(ff, sizes[:-1])


def test_prepare_all_gives_the_lazy_randomness():
    x = torch.randn(2, 5000)
    lazy, eager = Fastfood(5000, 16, seed=4, max_block=1024), Fastfood(5000, 16, seed=4, max_block=1024)
    eager.prepare_all()
    assert eager.nbytes == lazy.nbytes
    torch.testing.assert_close(eager(x), lazy(x), rtol=0, atol=0)


def test_regenerated_randomness_gives_the_kept_one_and_holds_no_tables():
    x = torch.randn(3, 40_000)
    kept, regen = (
        Fastfood(40_000, 32, seed=9, max_block=1024),
        Fastfood(40_000, 32, seed=9, max_block=1024, keep_tables=False),
    )
    torch.testing.assert_close(regen(x), kept(x), rtol=0, atol=0)
    assert regen.nbytes == 0 and kept.nbytes >= 5 * 40_000
    # one call generates at most CHUNK_BLOCKS blocks' randomness at a time
    assert 0 < regen.peak_transient_nbytes <= CHUNK_BLOCKS * 1024 * 5 + CHUNK_BLOCKS * 32 * 12
    with pytest.raises(ValueError, match="keep_tables"):
        regen.prepare_all()
    pieces = list(torch.split(x[0], [1000, 30_000, 9_000]))
    stream = StreamingProjector(regen, [len(p) for p in pieces])
    for i in (2, 0, 1):
        stream.add(i, pieces[i])
    torch.testing.assert_close(stream.result(), kept(x[:1])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("d_out", [64, 48])
def test_kept_rows_transform_equals_the_full_transform(d_out):
    ff = Fastfood(3 * 4096, d_out, seed=2, max_block=4096)
    x = torch.randn(2, 3, 4096)  # [N, J, n]
    signs, perm, gauss, scale, rows = ff._tables([0, 1, 2])
    # reference: both Walsh–Hadamard transforms in full (butterflies), then the kept rows
    y = fwht_butterfly(x * signs)
    y = torch.gather(y, -1, (perm.long() + ff.spec.perm_offset).expand_as(y)) * gauss.float()
    full = torch.gather(fwht_butterfly(y), -1, rows.expand(2, 3, d_out)) * scale
    torch.testing.assert_close(ff.block_outputs(x, 0), full, rtol=1e-4, atol=1e-4)
    # [J, D']: one coset per block, D' distinct rows
    assert all(len(set(r.tolist())) == d_out for r in rows)
    assert all(len(set((r // 64).tolist())) == 1 for r in rows)


def test_chunk_size_changes_speed_not_the_result():
    x = torch.randn(2, 40_000)
    ref = Fastfood(40_000, 32, seed=3, max_block=1024)
    assert ref.chunk_blocks == CHUNK_BLOCKS  # the CPU default
    for chunk in (1, 7, 64):
        other = Fastfood(40_000, 32, seed=3, max_block=1024, chunk_blocks=chunk)
        torch.testing.assert_close(other(x), ref(x), rtol=1e-5, atol=1e-6)
        pieces = list(torch.split(x[1], [5_000, 20_000, 15_000]))
        stream = StreamingProjector(other, [len(p) for p in pieces])
        for i in (1, 2, 0):
            stream.add(i, pieces[i])
        torch.testing.assert_close(stream.result(), ref(x[1:])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_cuda_projection_equals_the_cpu_one():
    """The randomness is drawn on the CPU, so a CUDA projection is the same map (to fp32 rounding)."""
    x = torch.randn(2, 300_000)
    cpu = Fastfood(300_000, 64, seed=2, max_block=2**12)
    gpu = Fastfood(300_000, 64, seed=2, max_block=2**12, device="cuda")
    assert gpu.chunk_blocks == GPU_CHUNK_BLOCKS
    torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-4, atol=1e-5)
    pieces = list(torch.split(x[0].cuda(), [100_000, 150_000, 50_000]))
    stream = StreamingProjector(gpu, [len(p) for p in pieces])
    for i in (2, 0, 1):
        stream.add(i, pieces[i])
    torch.testing.assert_close(stream.result().cpu(), cpu(x[:1])[0], rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
def test_tables_in_pinned_host_memory_project_the_same_on_cuda():
    x = torch.randn(2, 300_000, device="cuda")
    on_device = Fastfood(300_000, 64, seed=2, max_block=2**12, device="cuda")
    on_host = Fastfood(300_000, 64, seed=2, max_block=2**12, device="cuda", table_device="cpu")
    assert on_host._signs.is_pinned() and on_host._rows.is_pinned() and on_device._signs.is_cuda
    assert on_host._buffer.numel() < on_host.nbytes + 5 * 64  # one buffer of the tables' size, not rounded up
    on_host.prepare_all()
    torch.testing.assert_close(on_host(x), on_device(x), rtol=0, atol=0)


def test_default_table_device_is_the_projection_device_off_cuda():
    from motive.projection import default_table_device

    assert default_table_device(torch.device("cpu"), 10**12) == torch.device("cpu")
    f = Fastfood(5000, 16, seed=1, max_block=2**10)
    assert f.table_device == torch.device("cpu")
    f.prepare_all(progress=False)
    assert f._ready.all()


def test_tables_built_by_threads_are_the_tables_built_one_by_one():
    lazy = Fastfood(300_000, 64, seed=4, max_block=2**12)
    x = torch.randn(1, 300_000)
    lazy(x)  # fills every block, one after another
    for threads in (1, 3):
        eager = Fastfood(300_000, 64, seed=4, max_block=2**12, chunk_blocks=5)
        eager.prepare_all(threads=threads)
        assert eager._ready.all()
        assert torch.equal(eager._buffer, lazy._buffer)  # every table, bit for bit


def test_tables_share_one_buffer_of_their_exact_size():
    """One allocation (aligned views, no gaps beyond alignment, no overlap): a pinned buffer is not
    rounded up per table, and each view reads back what was written to it."""
    from motive.projection import TABLE_ALIGN, table_buffer

    layout = [
        (torch.int8, 100),
        (torch.int16, 100),
        (torch.float16, 100),
        (torch.float32, 7),
        (torch.int64, 7),
    ]
    buffer, views = table_buffer(3, layout, torch.device("cpu"))
    sizes = [3 * w * dt.itemsize for dt, w in layout]
    assert sum(sizes) <= buffer.numel() < sum(sizes) + len(layout) * TABLE_ALIGN
    starts = [v.data_ptr() - buffer.data_ptr() for v in views]
    assert all(s % TABLE_ALIGN == 0 for s in starts)
    assert all(a + n <= b for a, n, b in zip(starts, sizes, starts[1:]))
    for k, (v, (dt, w)) in enumerate(zip(views, layout)):
        assert v.shape == (3, w) and v.dtype == dt and v.is_contiguous()
        v.copy_(torch.full((3, w), k + 1, dtype=dt))
    for k, v in enumerate(views):
        assert (v == k + 1).all(), k
    f = Fastfood(10_000, 16, seed=1, max_block=2**10)
    assert f._buffer.numel() < f.nbytes + 5 * TABLE_ALIGN and f._signs.data_ptr() == f._buffer.data_ptr()
