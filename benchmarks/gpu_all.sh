#!/usr/bin/env bash
# Every benchmark on a GPU, figures saved for the README's GPU column (issue 19).
#
# Prepared, not yet run: for a session that has a GPU machine. From the repository root:
#   WORKBENCH_DATA=/path/to/data bash benchmarks/gpu_all.sh [out-folder]
# It installs JAX for CUDA and PyTorch (the "bench" extra) into the project's venv if they are
# missing, prints the devices, then runs each benchmark with its default settings, one log
# per benchmark in the out folder (default: runs/gpu-bench-<date>), and a summary of the lines
# that carry the figures (ratios, rates, peaks). A benchmark that fails is logged and the rest
# still run; the exit status is the number of failures.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu-bench-$(date -u +%Y%m%d-%H%M)}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
export WORKBENCH_DATA=${WORKBENCH_DATA:-../shared/data}

"$PY" -c "import jax; assert jax.default_backend() == 'gpu'" 2>/dev/null \
  || "$PY" -m pip install --quiet "jax[cuda12]"
"$PY" -c "import torch" 2>/dev/null || "$PY" -m pip install --quiet -e ".[bench]"
{
  "$PY" -c "import jax; print('JAX', jax.__version__, jax.devices())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  nproc
} | tee "$OUT/machine.txt"

failures=0
run() {  # run NAME ARGS...: one benchmark, its log in $OUT/NAME.log
  local name=$1; shift
  echo "== $name $*" | tee -a "$OUT/summary.txt"
  local start=$SECONDS
  if timeout 3600 "$PY" "benchmarks/$name.py" "$@" > "$OUT/$name.log" 2>&1; then
    echo "   ok in $((SECONDS - start)) s" | tee -a "$OUT/summary.txt"
  else
    echo "   FAILED ($?) after $((SECONDS - start)) s: see $OUT/$name.log" | tee -a "$OUT/summary.txt"
    failures=$((failures + 1))
  fi
  grep -Ei "ratio|/s|limit|peak|ours|torch|x faster|[0-9]x" "$OUT/$name.log" \
    | head -40 >> "$OUT/summary.txt" || true
}

# The forward pass against PyTorch, both on the GPU.
run bench_forward --repeats 5 --torch-device cuda
run bench_passes --repeats 5 --models lenet5,deepfault_8x20_leaky
run bench_memory --sizes 10000,50000,100000
run bench_coverage --repeats 5
run bench_deepxplore
run bench_deepfault
# Three CIFAR-10 models (resnet20, cifar_vgg, cifar_lenet, one epoch on all 50k training
# images): coverage, spectra and the joint generator on the whole test set, 1,000 seeds.
run bench_cifar --full --repeats 3
for extra in benchmarks/bench_*.py; do  # any other benchmark, with its defaults
  name=$(basename "$extra" .py)
  case $name in
    bench_forward|bench_passes|bench_memory|bench_coverage|bench_deepxplore|bench_deepfault\
      |bench_cifar) ;;
    *) run "$name" ;;
  esac
done
echo "figures: $OUT/summary.txt ($failures failed)"
exit "$failures"
