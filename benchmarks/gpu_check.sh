#!/usr/bin/env bash
# GPU check of the GeNN route (and brian2cuda if asked): under 5 minutes on a GPU machine
# without --cuda (every brian2cuda epoch is an nvcc build of minutes).
#   benchmarks/gpu_check.sh [--cuda] [--cuda-compute-capability X.Y] [--samples N]
# 1. a venv with the genn stack (brian2 2.5.4, brian2genn 1.7.0, numpy<2, cython<3.1) and
#    spide-brian installed from this checkout (VENV, default .venv-genn); --cuda adds
#    brian2cuda 1.0a3 and, if the CUDA toolkit has no cuRAND, the nvidia-curand wheel;
# 2. GeNN 4.x from GENN_PATH (a GeNN 4.x source tree the user provides, see README "GPU");
#    GeNN's own libraries build at the first run; without GENN_PATH, --cuda runs without genn;
# 3. trains --samples digits (default 300, 2 epochs, one hidden layer of 64) on
#    cpp_standalone, on genn (GPU) and with --cuda on cuda_standalone, prints compile
#    seconds and samples/s, and compares counts and weights with cpp_standalone.
# Exit status: 0 when every device equals cpp_standalone (spike counts identical, parameters
# to rounding). GeNN's CPU backend does (tests/test_brian_genn.py); its GPU backend is what
# this script measures.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-genn}
PYTHON=${PYTHON:-python3}
EXTRA=()
LIMIT=280
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) EXTRA+=(--cuda); LIMIT=1500; shift ;;
    --cuda-compute-capability) EXTRA+=(--cuda-compute-capability "$2"); shift 2 ;;
    --samples) EXTRA+=(--samples "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv || \
  echo "warning: nvidia-smi not found; GeNN's CUDA backend will fail" >&2
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q "brian2==2.5.4" "brian2genn==1.7.0" "numpy<2" "cython<3.1" \
      scikit-learn
  "$VENV/bin/pip" install -q --no-deps -e .
fi
CUDA=0
[[ " ${EXTRA[*]-} " == *" --cuda "* ]] && CUDA=1
if [ "$CUDA" = 1 ]; then
  "$VENV/bin/pip" install -q "brian2cuda==1.0a3"
  "$VENV/bin/python" -c "import sys; from spide_brian.devices.cuda import has_curand; \
sys.exit(0 if has_curand() else 1)" || "$VENV/bin/pip" install -q nvidia-curand
fi
if [ -z "${GENN_PATH:-}" ] || [ ! -x "$GENN_PATH/bin/genn-buildmodel.sh" ]; then
  if [ "$CUDA" = 1 ]; then
    echo "warning: no GeNN tree at GENN_PATH; checking cpp_standalone and cuda_standalone" >&2
    EXTRA+=(--no-genn)
  else
    echo "error: set GENN_PATH to a GeNN 4.x source tree (with bin/genn-buildmodel.sh)" >&2
    exit 2
  fi
else
  export PATH="$GENN_PATH/bin:$PATH"
  EXTRA+=(--genn-path "$GENN_PATH")
fi
if [ -z "${CUDA_PATH:-}" ] && command -v nvcc >/dev/null; then
  export CUDA_PATH="$(dirname "$(dirname "$(command -v nvcc)")")"
fi
echo "GENN_PATH=${GENN_PATH:-unset} CUDA_PATH=${CUDA_PATH:-unset}"
time timeout "$LIMIT" "$VENV/bin/python" benchmarks/gpu_check.py "${EXTRA[@]}" 2>&1 | \
    grep -E "^(cpp_standalone|genn|cuda_standalone|  )|Error"
