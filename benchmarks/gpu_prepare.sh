#!/usr/bin/env bash
# Build the carry folder for the device run and print the exact call to make.
#
# The GPU machine's image has torch 2.11, transformers, accelerate, huggingface-hub, peft, safetensors,
# opencv, pandas, pyarrow, scipy, matplotlib, jinja2, pytest and their needs, but no diffusers and no av,
# and nothing can be fetched there. So gpu_carry/ (ignored by git) holds:
#   wheels/  diffusers, av and importlib_metadata (diffusers needs it; the image has only zipp), for
#            CPython 3.12 on x86-64, without their dependencies (the image has them);
#   commit.txt  the commit the run measures;
#   clips/   the two real clips benchmarks/real_path.py and finetune_scale.py use first (../shared does
#            not travel with the working tree).
# About 45 MB; the working tree that travels must stay under 64 MiB, which this script checks.
#
#   bash benchmarks/gpu_prepare.sh        # in the checkout the device tool sends
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CARRY=$ROOT/gpu_carry
VIDEOS=${MOTIVE_VIDEOS:-$ROOT/../shared/data/videos}
# diffusers and av as the project's venv resolves them; importlib_metadata 8.7 needs only zipp (10.x
# also needs lazy-importer, which the image lacks)
WHEELS=(diffusers==0.42.1 av==18.1.0 importlib_metadata==8.7.0)
CLIPS=(sam2__02_cups.mp4 cotracker__paragliding-launch.mp4) # real_path.NAMES[:2]
rm -rf "$CARRY"
mkdir -p "$CARRY/wheels" "$CARRY/clips"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$CARRY/wheels" "${WHEELS[@]}" 2>&1 | grep -v 'is ignored' || true
[ "$(ls "$CARRY"/wheels/*.whl | wc -l)" = "${#WHEELS[@]}" ] || { echo "a wheel is missing"; exit 1; }
for clip in "${CLIPS[@]}"; do cp "$VIDEOS/$clip" "$CARRY/clips/"; done
# the commit the run measures (the device gets the files, not the git history)
(cd "$ROOT" && echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+uncommitted changes')") >"$CARRY/commit.txt"
ls -l "$CARRY"/wheels "$CARRY"/clips
# what travels: tracked files, untracked files git does not ignore, and the carried folder
tree=$(cd "$ROOT" && { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -cb 2>/dev/null | awk '/total$/ {s += $1} END {print s}')
carry=$(du -sb "$CARRY" | cut -f1)
echo "travels: $(((tree + carry) / 2**20)) MiB (tree $((tree / 2**20)) MiB + gpu_carry $((carry / 2**20)) MiB; limit 64 MiB)"
[ $((tree + carry)) -lt $((64 * 2**20)) ] || { echo "over 64 MiB"; exit 1; }
cat <<'EOF'
Then, with the device tool (one call; the script keeps to 8 minutes, its steps in order of value):
  run(command="bash benchmarks/gpu_checks.sh", carry=["gpu_carry"], timeout_s=600)
Its figures come back in $OUT/summary.md, each step's log in $OUT/<step>.log. Later, separate calls:
  run(command="GPU_STEPS='env finetune' bash benchmarks/gpu_checks.sh", carry=["gpu_carry"], timeout_s=600)
  run(command="GPU_STEPS='env wan21host' bash benchmarks/gpu_checks.sh", carry=["gpu_carry"], timeout_s=600)
  run(command="GPU_STEPS='env ti2v5b' GPU_BUDGET_S=560 bash benchmarks/gpu_checks.sh", carry=["gpu_carry"], timeout_s=600)
  run(command="GPU_STEPS='env a14b' GPU_BUDGET_S=560 bash benchmarks/gpu_checks.sh", carry=["gpu_carry"], timeout_s=600)
EOF
