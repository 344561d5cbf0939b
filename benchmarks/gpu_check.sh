#!/usr/bin/env bash
# GPU check of the GeNN route (and brian2cuda if asked): under 5 minutes on a GPU machine.
#   benchmarks/gpu_check.sh [--cuda] [--samples N]
# 1. a venv with the genn stack (brian2 2.5.4, brian2genn 1.7.0, numpy<2, cython<3.1) and
#    spide-brian installed from this checkout (VENV, default .venv-genn);
# 2. GeNN 4.x from GENN_PATH (a GeNN 4.x source tree the user provides, see README "GPU");
#    GeNN's own libraries build at the first run;
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
while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) EXTRA+=(--cuda); shift ;;
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
if [[ " ${EXTRA[*]-} " == *" --cuda "* ]]; then
  "$VENV/bin/pip" install -q "brian2cuda==1.0a3"
fi
if [ -z "${GENN_PATH:-}" ] || [ ! -x "$GENN_PATH/bin/genn-buildmodel.sh" ]; then
  echo "error: set GENN_PATH to a GeNN 4.x source tree (with bin/genn-buildmodel.sh)" >&2
  exit 2
fi
export PATH="$GENN_PATH/bin:$PATH"
if [ -z "${CUDA_PATH:-}" ] && command -v nvcc >/dev/null; then
  export CUDA_PATH="$(dirname "$(dirname "$(command -v nvcc)")")"
fi
echo "GENN_PATH=$GENN_PATH CUDA_PATH=${CUDA_PATH:-unset}"
time timeout 280 "$VENV/bin/python" benchmarks/gpu_check.py --genn-path "$GENN_PATH" \
    "${EXTRA[@]}" 2>&1 | grep -E "^(cpp_standalone|genn|cuda_standalone|  )|Error"
