#!/usr/bin/env bash
# One GPU session's checks, as one script (at most 9 minutes on one GPU):
#   1. the CUDA tests (every test parametrized over devices, "cuda" cases; the
#      compiled-chunk test generates Triton code and runs CUDA graphs),
#   2. the benchmark suite on the GPU: W1 (default, fused, multi-step, windows,
#      net.compile() runs, compiled chunks and the compiled step, both with CUDA
#      graphs) and W2 (STDP: step loop, net.run, compiled chunks), against the
#      plain loop and the matmul-only loop measured in the same run,
#   3. a Diehl & Cook speed probe (N = 400, batch 256, 2560 training images),
#      eager and compiled (--compile).
# Writes one markdown report (default gpu_report.md; or the first argument).
#
#     bash benchmarks/gpu_check.sh                 # -> gpu_report.md
#     bash benchmarks/gpu_check.sh $OUT/report.md
set -uo pipefail
cd "$(dirname "$0")/.."
report=${1:-gpu_report.md}
mkdir -p "$(dirname "$report")"

section() {  # section TITLE TIMEOUT_S COMMAND...: run COMMAND, put its output in the report
    local title=$1 limit=$2
    shift 2
    local start=$SECONDS
    {
        echo
        echo "## $title"
        echo
        echo "\`$*\`"
        echo
        echo '```'
    } >>"$report"
    timeout "$limit" "$@" >>"$report" 2>&1
    local rc=$?
    {
        echo '```'
        echo
        echo "exit status $rc, $((SECONDS - start)) s"
    } >>"$report"
    echo "$title: exit $rc, $((SECONDS - start)) s"
}

{
    echo "# PySNN GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    python -c "import torch, pysnn; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'pysnn', pysnn.__version__)"
    git log -1 --format='commit %h %s' 2>/dev/null
    echo '```'
} >"$report"

python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "CUDA is not available here" | tee -a "$report"
    exit 1
}

section "CUDA tests" 120 python -m pytest -q -p no:cacheprovider -k cuda
section "Benchmark suite on the GPU (ms per step)" 270 \
    python benchmarks/suite.py --device cuda --only W1 W2 --compiled-step --reps 3
for flag in "" --compile; do
    section "Diehl & Cook speed probe (N=400, batch 256, GPU) $flag" 75 \
        python examples/diehl_cook_mnist.py --neurons 400 --batch 256 --eval-batch 1000 \
        --train 2560 --assign 1000 --test 1000 --device cuda --no-progress --plot /tmp/dc_probe.png $flag
done
echo "report: $report"
