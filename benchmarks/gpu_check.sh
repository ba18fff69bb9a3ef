#!/usr/bin/env bash
# The GPU check of fastsup's kernels, for whoever has a CUDA GPU: one command,
# one report file.
#
#   bash benchmarks/gpu_check.sh [--full-bench]
#
# 1. the GPU test suite with compiled kernels (TRITON_INTERPRET=0):
#    tests/test_kernels.py (batches bit-identical to the CPU torch sampler,
#    every variant against the torch backend, 64-bit seeds, chunked equals
#    unchunked, on_step changes nothing, one-step dW against torch.optim at
#    1e-6, instances packed into a warp train as alone), tests/test_kernels_launch.py and tests/test_kernels_gpu.py (the
#    tiny shapes and 400->30 with both strategies, a CUDA-graph replay, 2**31
#    history offsets, a second GPU if there is one, peak memory at 2e5
#    instances);
# 2. benchmarks/gpu_bench.py: its --quick smoke budget by default, the full
#    budget with --full-bench (longer, and not capped).
#
# The default check ends within 8 minutes whatever the GPU: the tests get at
# most 420 s, the benchmark what is left of the 480 s, and a part that runs
# out says TIMED OUT (nothing has timed either part on a GPU yet).
#
# Everything printed goes to benchmarks/results/gpu_check-<UTC time>-<GPU>.txt
# as well; commit that file.  Without a GPU it says so and exits 0, having
# run nothing.  Exit status: 0 when everything passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

bench_args=(--quick)
check_seconds=480  # the default check's whole budget; 0: none
if [[ "${1:-}" == "--full-bench" ]]; then
    bench_args=()
    check_seconds=0
elif [[ $# -gt 0 ]]; then
    echo "usage: bash benchmarks/gpu_check.sh [--full-bench]" >&2
    exit 2
fi
python=${PYTHON:-python}

gpu=$("$python" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>/dev/null)
if [[ -z "$gpu" ]]; then
    echo "gpu_check: no CUDA GPU visible to torch (or torch is not installed): nothing run, nothing measured."
    exit 0
fi

mkdir -p benchmarks/results
stamp=$(date -u +%Y-%m-%dT%H%MZ)
report="benchmarks/results/gpu_check-${stamp}-$(echo "$gpu" | tr -c 'A-Za-z0-9\n' '_').txt"
exec > >(tee "$report") 2>&1

start=$SECONDS
echo "fastsup GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
echo "GPU: $gpu"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null || true
"$python" -c 'import torch, triton; print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}")'

echo
echo "== 1/2 GPU test suite (TRITON_INTERPRET=0) =="
TRITON_INTERPRET=0 timeout 420 "$python" -m pytest -q -rs -p no:cacheprovider \
    tests/test_kernels.py tests/test_kernels_launch.py tests/test_kernels_gpu.py
tests_rc=$?
echo "test suite: exit $tests_rc after $((SECONDS - start)) s$([[ $tests_rc == 124 ]] && echo ' (TIMED OUT at 420 s)')"

echo
echo "== 2/2 benchmarks/gpu_bench.py ${bench_args[*]:-(full budget)} =="
bench_limit=()
if (( check_seconds )); then
    left=$(( check_seconds - (SECONDS - start) ))
    bench_limit=(timeout "$(( left > 1 ? left : 1 ))")
fi
TRITON_INTERPRET=0 "${bench_limit[@]}" "$python" benchmarks/gpu_bench.py "${bench_args[@]}"
bench_rc=$?
echo "benchmark: exit $bench_rc$([[ $bench_rc == 124 && -n "${bench_limit[*]}" ]] && echo " (TIMED OUT: the check's $check_seconds s were spent)")"

echo
if [[ $tests_rc == 0 && $bench_rc == 0 ]]; then
    verdict="PASSED"
else
    verdict="FAILED (tests exit $tests_rc, benchmark exit $bench_rc)"
fi
echo "gpu_check: $verdict in $((SECONDS - start)) s on $gpu; report: $report"
[[ $verdict == PASSED ]]
