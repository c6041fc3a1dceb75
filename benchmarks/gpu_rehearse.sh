#!/usr/bin/env bash
# Rehearse the device run on a CPU, so that import errors and version drift show before a lease.
#
# Builds (once) a venv that matches the GPU machine's image: Python 3.12, torch 2.11.0 (PyPI's CUDA
# build, which runs on a CPU), transformers 5.17.0, accelerate 1.15.0, huggingface-hub 1.33.0,
# numpy 2.5.2, safetensors 0.8.0, tokenizers 0.23.2, torchvision 0.26.0, and the other packages the image
# lists (opencv-python-headless, pandas, pyarrow, scipy, matplotlib, jinja2, peft, pytest, ...) — and
# NOT diffusers or av, which the image lacks. Then it takes diffusers and av out again (a run before
# installed them), puts that venv's python first on PATH as `python3`, and runs the exact device command,
# `bash benchmarks/gpu_checks.sh`, with --smoke: the carried wheels go in the same way as on the device.
#
#   bash benchmarks/gpu_prepare.sh      # first: the carry folder (wheels, clips)
#   PY312=/root/.pyenv/versions/3.12.1/bin/python3.12 bash benchmarks/gpu_rehearse.sh
#
# torch 2.11.0 pins nvidia-nccl-cu13==2.28.9, which PyPI does not serve (it has 2.27.7 and 2.32.x), so
# torch goes in with --no-deps and its other requirements are named here, NCCL at 2.32.3 (the same
# libnccl.so.2). Packages that require torch (accelerate, peft, torchvision) go in with --no-deps too,
# else pip re-resolves torch's pins and stops. About 4 GB of downloads the first time.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${REHEARSE_VENV:-/tmp/motive-device-venv}
PY312=${PY312:-python3.12}
if [ ! -e "$VENV/.ready" ]; then
  "$PY312" -m venv "$VENV"
  pip=("$VENV/bin/python" -m pip install -q --no-compile)
  "${pip[@]}" --no-deps torch==2.11.0
  "${pip[@]}" filelock 'typing-extensions>=4.10' 'setuptools<82' 'sympy>=1.13.3' networkx jinja2 fsspec \
    'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.2' \
    'cuda-bindings>=13.0.3,<14' nvidia-cudnn-cu13==9.19.0.56 nvidia-cusparselt-cu13==0.8.0 \
    nvidia-nccl-cu13==2.32.3 nvidia-nvshmem-cu13==3.4.5 triton==3.6.0
  "${pip[@]}" transformers==5.17.0 huggingface_hub==1.33.0 numpy==2.5.2 safetensors==0.8.0 \
    tokenizers==0.23.2 opencv-python-headless pandas pyarrow scipy matplotlib pytest tqdm psutil pyyaml \
    packaging pillow regex requests zipp
  "${pip[@]}" --no-deps accelerate==1.15.0 peft==0.21.2 torchvision==0.26.0
  touch "$VENV/.ready"
fi
# the image has no diffusers and no av: take out what an earlier rehearsal installed, and its src link
"$VENV/bin/python" -m pip uninstall -q -y diffusers av importlib_metadata 2>/dev/null || true
rm -f "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/motive-src.pth"
"$VENV/bin/python" -c 'import diffusers' 2>/dev/null && { echo "diffusers is still importable"; exit 1; }
cd "$ROOT"
export PATH="$VENV/bin:$PATH" OUT=${OUT:-/tmp/motive-rehearse-out}
rm -rf "$OUT" && mkdir -p "$OUT"
echo "rehearsal: $(python3 --version), torch $(python3 -c 'import torch; print(torch.__version__)'), OUT=$OUT"
bash benchmarks/gpu_checks.sh --smoke
