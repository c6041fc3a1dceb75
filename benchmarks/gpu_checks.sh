#!/usr/bin/env bash
# Every GPU check of the real-checkpoint path in one run, for a lent GPU's short lease:
#   1. the gpu-marked tests (CUDA projection and features equal the CPU ones; pinned host tables;
#      the text encoder leaves the device after encoding);
#   2. benchmarks/real_path.py at full size: Wan2.1-1.3B (30 blocks, UMT5-XXL-shaped encoder) at
#      81×480×832, tables where auto puts them and in host memory (what a 24 GB card gets);
#   3. fine-tuning Wan2.1-1.3B at 81×480×832, full and LoRA rank 32 (benchmarks/finetune_scale.py);
#   4. Wan2.2-TI2V-5B at 121×704×1280 and one Wan2.2-A14B expert, as far as time allows.
# Each step has its own time limit so one slow step cannot eat the lease; results go to $OUT (or
# ./gpu_results). `bash benchmarks/gpu_checks.sh --smoke` runs the same steps on a CPU in minutes.
set -u
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
if [ "${1:-}" = "--smoke" ]; then
  SIZE="--smoke"; FT="--smoke"; TESTS="tests/test_projection.py tests/models/test_shapes.py"
else
  SIZE="--full --clips 4"; FT="--full"; TESTS="tests"
fi
step() {  # step NAME SECONDS COMMAND...: run with a limit, keep its output, never stop the script
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s): $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "== $name: exit $? ; last lines:"; tail -n 16 "$OUT/$name.log"
}
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1 || true
step gpu_tests 120 python -m pytest -m gpu -q $TESTS
step wan21_auto 300 python benchmarks/real_path.py $SIZE --work "$OUT"
step wan21_host 240 python benchmarks/real_path.py $SIZE --tables host --work "$OUT"
step finetune 300 python benchmarks/finetune_scale.py $FT
step ti2v_5b 300 python benchmarks/real_path.py $SIZE --variant wan2.2-ti2v-5b --work "$OUT"
step a14b_expert 300 python benchmarks/real_path.py $SIZE --variant wan2.2-t2v-a14b --work "$OUT"
