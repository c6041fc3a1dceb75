#!/usr/bin/env bash
# The GPU checks of the real-checkpoint path in one device command of at most 8 minutes, steps in order
# of value, each under its own cap and all under one global deadline:
#   env      versions, nvidia-smi, free disk and memory; installs the carried wheels (gpu_carry/wheels:
#            diffusers, av, importlib_metadata) into python3's own site-packages and links src with a .pth
#   wan21    benchmarks/real_path.py: Wan2.1-1.3B at full size (30 blocks, UMT5-XXL-shaped encoder),
#            81×480×832, every featurize stage, 2 real clips, then the `motive featurize` command
#   tests    the gpu-marked tests (only the files that have them)
#   finetune benchmarks/finetune_scale.py: full fine-tuning and LoRA r32, batch 1 (if time is left)
# Later, separate commands (GPU_STEPS=...): finetune alone, wan21host (wan21 with the projection tables
# in pinned host memory, what a 24 GB card gets), ti2v5b (Wan2.2-TI2V-5B at 121×704×1280), a14b (one
# Wan2.2-A14B expert).
#
# Each step's log goes to $OUT/<step>.log as it runs, and its figures (tables, JSON, test summary) are
# appended to $OUT/summary.md as it ends, so a step stopped at its cap loses nothing of the earlier ones;
# at most 6 files come back. Everything else lives in one /tmp folder, removed at the end.
#
#   bash benchmarks/gpu_prepare.sh               # here, first: builds gpu_carry/, prints the run call
#   bash benchmarks/gpu_checks.sh                # on the device (the command gpu_prepare.sh prints)
#   bash benchmarks/gpu_checks.sh --smoke        # the same steps at smoke size, on a CPU, in minutes
#   GPU_STEPS="env ti2v5b" bash benchmarks/gpu_checks.sh     # a later command
# GPU_BUDGET_S (default 480) is the global deadline in seconds, GPU_CAP_SCALE (default 1) multiplies
# every step's cap (a slow CPU rehearsal), GPU_CARRY is the carry folder.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
OUT=${OUT:-/tmp/motive-gpu-out}
CARRY=${GPU_CARRY:-$ROOT/gpu_carry}
STEPS=${GPU_STEPS:-env wan21 tests finetune}
DEADLINE=$((SECONDS + ${GPU_BUDGET_S:-480}))
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/motive-gpu.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/tmp"
export TMPDIR=$WORK/tmp MOTIVE_CACHE=$WORK/cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
SUMMARY=$OUT/summary.md
VIDEOS=$CARRY/clips
[ -d "$VIDEOS" ] || VIDEOS=$ROOT/../shared/data/videos  # a CPU rehearsal without gpu_prepare.sh
echo "# gpu_checks $(date -u +%FT%TZ), commit $(cat "$CARRY/commit.txt" 2>/dev/null || git rev-parse --short HEAD 2>/dev/null || echo '?'), smoke=$SMOKE, steps: $STEPS" >>"$SUMMARY"

wanted() { [[ " $STEPS " == *" $1 "* ]]; }

step() { # step NAME CAP CMD...: CMD under min(CAP, time to the deadline), logged; figures to summary.md
  local name=$1 cap=$(($2 * ${GPU_CAP_SCALE:-1})) limit rc t0=$SECONDS
  shift 2
  limit=$((DEADLINE - SECONDS - 5))
  [ "$cap" -lt "$limit" ] && limit=$cap
  if [ "$limit" -lt 30 ]; then
    echo "## $name: skipped, $((DEADLINE - SECONDS)) s left before the deadline" | tee -a "$SUMMARY"
    return
  fi
  echo "== $name (limit ${limit}s): $*"
  timeout -k 10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  {
    echo "## $name: exit $rc$([ $rc = 124 ] && echo ' (stopped at its limit)') after $((SECONDS - t0)) s of ${limit} s"
    echo '```'
    grep -E '^(\||\{|[A-Za-z0-9_.-]+ \(|decoding |the first clip |=+ .*(passed|failed|error|skipped)|[0-9]+ (passed|failed|skipped|deselected|error)|FAILED|ERROR|SKIPPED)' "$OUT/$name.log" | tail -n 40
    [ $rc = 0 ] || tail -n 15 "$OUT/$name.log"
    echo '```'
  } >>"$SUMMARY"
  tail -n 20 "$OUT/$name.log"
}

environment() { # versions, the card, disk; the carried wheels into python3's own site-packages
  local site
  date -u
  uname -a
  nproc
  free -g
  df -h /tmp "$ROOT"
  timeout 30 nvidia-smi || echo "no nvidia-smi"
  python3 --version
  site=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [ -d "$CARRY/wheels" ]; then
    if [ -w "$site" ]; then
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$CARRY"/wheels/*.whl
    else # not writable: a folder of our own on PYTHONPATH instead
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "$CARRY"/wheels/*.whl
      export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
    fi
  fi
  if [ -w "$site" ]; then
    echo "$ROOT/src" >"$site/motive-src.pth"
  else
    export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
  fi
  python3 - <<'EOF'
import importlib.metadata as md

import torch

import motive

names = ["torch", "diffusers", "transformers", "accelerate", "huggingface-hub", "peft", "safetensors", "av",
         "opencv-python-headless", "numpy", "pandas", "pyarrow", "scipy", "pytest"]
print("versions:", ", ".join(f"{n} {md.version(n)}" for n in names))
print("motive from", motive.__file__)
if torch.cuda.is_available():
    free, total = torch.cuda.mem_get_info()
    print(f"cuda: {torch.cuda.get_device_name()}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB free, "
          f"torch {torch.__version__}, cuda {torch.version.cuda}")
else:
    print("cuda: not available")
EOF
}

if wanted env; then
  t0=$SECONDS
  environment >"$OUT/env.log" 2>&1
  rc=$?
  { echo "## env: exit $rc after $((SECONDS - t0)) s"; echo '```'; grep -E '^(versions|cuda|motive from|Python)|/tmp' "$OUT/env.log"; echo '```'; } >>"$SUMMARY"
  tail -n 8 "$OUT/env.log"
  [ $rc = 0 ] || { echo "environment check failed: see $OUT/env.log"; cat "$SUMMARY"; exit 1; }
fi

if [ $SMOKE = 0 ] && ! python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
  echo "no CUDA device: full size needs one (--smoke runs the same steps on a CPU)" | tee -a "$SUMMARY"
  exit 1
fi
if [ $SMOKE = 1 ]; then
  SIZE=(--smoke)
else
  SIZE=(--full --clips 2)
fi
PIPE=$WORK/wan21 # one build of Wan2.1-1.3B for real_path.py and finetune_scale.py
wanted wan21 && step wan21 300 python3 benchmarks/real_path.py "${SIZE[@]}" --videos "$VIDEOS" --pipeline "$PIPE" --work "$WORK"
if wanted tests; then
  mapfile -t FILES < <(grep -rl --include='test_*.py' 'mark.gpu' tests)
  step tests 75 python3 -m pytest -m gpu -q -p no:cacheprovider --basetemp="$WORK/pytest" "${FILES[@]}"
fi
FT=(--full)
[ $SMOKE = 1 ] && FT=(--smoke)
wanted finetune && step finetune 300 python3 benchmarks/finetune_scale.py "${FT[@]}" --videos "$VIDEOS" --pipeline "$PIPE"
wanted wan21host && step wan21host 270 python3 benchmarks/real_path.py "${SIZE[@]}" --tables host --videos "$VIDEOS" --pipeline "$PIPE" --work "$WORK"
wanted ti2v5b && step ti2v5b 540 python3 benchmarks/real_path.py "${SIZE[@]}" --variant wan2.2-ti2v-5b --videos "$VIDEOS" --work "$WORK"
wanted a14b && step a14b 540 python3 benchmarks/real_path.py "${SIZE[@]}" --variant wan2.2-t2v-a14b --videos "$VIDEOS" --work "$WORK"
echo "== summary ($((SECONDS - DEADLINE + ${GPU_BUDGET_S:-480})) s in all), also in $SUMMARY:"
cat "$SUMMARY"
