#!/usr/bin/env bash
# benchmarks/gpu.sh: every GPU row and every CUDA check in one run, for the minutes a GPU is lent (issue 33).
#
#   bash benchmarks/gpu.sh              # on a machine with CUDA: <= 8 minutes on one GPU
#   bash benchmarks/gpu.sh --dry-run    # anywhere: print the plan (steps, commands, rows) and exit 0
#
# Steps (each under its own timeout, and all of them under one 8-minute budget, so a slow step
# costs its own rows only): the CUDA tests (pytest -m gpu tests/gpu), then every benchmark on
# cuda. Each benchmark writes benchmarks/results/cuda-<date>-<tag>.{json,md}; this script writes
# benchmarks/results/cuda-<date>-gpu.md: the GPU, torch, load, each step's status and time, the
# tests' summary and every step's table. Commit that folder after a run.
#
# Python: $PYTHON if set, else .venv/bin/python when it imports torch, else python3. The
# repository root is put on PYTHONPATH, so no install is needed.
set -u

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu.sh: unknown option $arg (valid: --dry-run, --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
elif [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  PY=.venv/bin/python
else
  PY=python3
fi

BUDGET_S=480          # the whole run: 8 minutes
STAMP="$(date -u +%Y-%m-%d)"
RESULTS=benchmarks/results
SUMMARY="$RESULTS/cuda-$STAMP-gpu.md"
LOGS="$RESULTS/cuda-$STAMP-gpu-logs"

NGPU=0
if [ "$DRY" = 0 ] || "$PY" -c "import torch" >/dev/null 2>&1; then
  NGPU="$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)"
fi
# mining under torchrun takes one GPU per process (nccl): 2 processes only with 2 GPUs
MINING_PROCS=1
[ "$NGPU" -ge 2 ] && MINING_PROCS=1,2

# Feature visualization vs Lucent (issue 27) is being written elsewhere: this hook runs the
# first of these modules that exists, with --device cuda --tag gpu-featviz, and skips otherwise.
FEATVIZ_MODULES="featviz feature_visualization"
FEATVIZ=""
for m in $FEATVIZ_MODULES; do
  if [ -f "benchmarks/$m.py" ]; then FEATVIZ="$m"; break; fi
done

# name | timeout s | rows it produces | command ($PY is the Python above)
STEPS=(
  "tests|90|CUDA tests: every method on CUDA vs the CPU float64 reference; float32 maps under autocast and bf16; no host sync in the hot path; memory after 100 maps; incremental occlusion exact on CUDA; mining with nccl|\$PY -m pytest -q -p no:cacheprovider -m gpu -rs tests/gpu"
  "maps|90|single maps vs floor and Captum; the three maps on one Explainer; method switch on a cached forward; projection (middle layer); top-k scan vs inference (fp32, fp16 and bf16 autocast; batch 1 and 16)|\$PY -m benchmarks --device cuda --amp --models vgg16,resnet50,shapes --batches 1,16 --repeats 10 --warmup 3 --no-occlusion --scan-batches 4 --tag gpu-maps"
  "occlusion|70|occlusion incremental vs full recompute vs Captum; widget ResNet-18 occlusion before/after|\$PY -m benchmarks.occlusion --device cuda --models vgg16,resnet50,shapes --repeats 3 --stride 8 --tag gpu-occlusion"
  "faithfulness|45|faithfulness curves vs Quantus PixelFlipping|\$PY -m benchmarks --device cuda --models '' --faithfulness --faithfulness-images 16 --repeats 3 --tag gpu-faithfulness"
  "mining|65|mining scan vs inference; mining with torchrun (nccl) on $MINING_PROCS process(es); projection pass|\$PY -m benchmarks --device cuda --models '' --mining --mining-procs $MINING_PROCS --repeats 2 --tag gpu-mining"
  "costs|30|fixed costs: bundled single maps vs floor, three maps on ResNet-50 and VGG-16 vs floor, occlusion plan rebuilt vs cached (interleaved)|\$PY -m benchmarks.costs --device cuda --rounds 40 --tag gpu-costs"
  "click|40|widget click-to-PNG on ResNet-50 (kernel side)|\$PY -m benchmarks.widget --device cuda --repeats 10 --tag gpu-click"
  "featviz|50|feature visualization vs Lucent and Horama (speed case; hook: skipped while benchmarks/featviz.py is missing)|\$PY -m benchmarks.${FEATVIZ:-featviz} --device cuda --skip filters,classes --out benchmarks/results --tag gpu-featviz"
)

field() { echo "$1" | cut -d'|' -f"$2"; }

if [ "$DRY" = 1 ]; then
  echo "gpu.sh --dry-run: the plan (nothing runs); python: $PY; GPUs seen: $NGPU; budget ${BUDGET_S}s"
  for s in "${STEPS[@]}"; do
    name="$(field "$s" 1)"; t="$(field "$s" 2)"; rows="$(field "$s" 3)"; cmd="$(field "$s" 4-)"
    skip=""
    if [ "$name" = featviz ] && [ -z "$FEATVIZ" ]; then skip=" [SKIP: no benchmarks/{${FEATVIZ_MODULES// /,}}.py yet]"; fi
    echo "step $name (timeout ${t}s)$skip: ${cmd//\$PY/$PY}"
    echo "  rows: $rows"
  done
  echo "writes: $SUMMARY, $LOGS/ and benchmarks/results/cuda-$STAMP-<tag>.{json,md} per step"
  exit 0
fi

if [ "$NGPU" -lt 1 ]; then
  echo "gpu.sh: no CUDA device visible to $PY (torch.cuda.is_available() is false); run with --dry-run to see the plan" >&2
  exit 2
fi

mkdir -p "$LOGS"
START=$(date +%s)
GPU_NAME="$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')"
TORCH="$("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
EXTRAS="$("$PY" - <<'EOF'
import importlib.util as u
print(", ".join(f"{m} {'yes' if u.find_spec(m) else 'MISSING'}" for m in ("torchvision", "captum", "quantus", "pytest", "ipywidgets", "lucent")))
EOF
)"
{
  echo "# GPU run of benchmarks/gpu.sh, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "$GPU_NAME x $NGPU, torch $TORCH, $(nproc) CPU cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Packages: $EXTRAS. Git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo "| step | status | seconds | rows |"
  echo "|---|---|---:|---|"
} > "$SUMMARY.head"

: > "$SUMMARY.body"
for s in "${STEPS[@]}"; do
  name="$(field "$s" 1)"; t="$(field "$s" 2)"; rows="$(field "$s" 3)"; cmd="$(field "$s" 4-)"
  left=$(( BUDGET_S - ($(date +%s) - START) ))
  if [ "$name" = featviz ] && [ -z "$FEATVIZ" ]; then
    echo "| $name | skipped: no benchmarks/{${FEATVIZ_MODULES// /,}}.py yet | 0 | $rows |" >> "$SUMMARY.head"
    continue
  fi
  if [ "$left" -lt 10 ]; then
    echo "| $name | skipped: the 8-minute budget is spent | 0 | $rows |" >> "$SUMMARY.head"
    continue
  fi
  [ "$t" -gt "$left" ] && t=$left
  echo "== $name (timeout ${t}s): ${cmd//\$PY/$PY}"
  t0=$(date +%s)
  PY="$PY" timeout --kill-after=5 "$t" bash -c "${cmd//\$PY/\"\$PY\"}" > "$LOGS/$name.log" 2>&1
  rc=$?
  dt=$(( $(date +%s) - t0 ))
  case $rc in
    0) status=ok ;;
    124|137) status="**timed out** after ${t}s" ;;
    *) status="**failed** (exit $rc)" ;;
  esac
  echo "   $status in ${dt}s; log $LOGS/$name.log"
  tail -n 3 "$LOGS/$name.log" | sed 's/^/   | /'
  echo "| $name | $status | $dt | $rows |" >> "$SUMMARY.head"
  {
    echo
    echo "## $name ($status, ${dt}s)"
    echo
    if [ "$name" = tests ]; then
      echo '```text'
      grep -E "passed|failed|skipped|error|SKIPPED|FAILED|ERROR" "$LOGS/$name.log" | tail -n 40
      echo '```'
    else
      tag="$(echo "$cmd" | sed -n 's/.*--tag \([^ ]*\).*/\1/p')"
      found=0
      for f in "$RESULTS"/cuda-"$STAMP"*-"$tag".md; do
        [ -f "$f" ] || continue
        found=1; echo "From \`$f\`:"; echo; cat "$f"; echo
      done
      if [ "$found" = 0 ]; then echo '```text'; tail -n 20 "$LOGS/$name.log"; echo '```'; fi
    fi
  } >> "$SUMMARY.body"
done

{
  cat "$SUMMARY.head"
  echo
  echo "Total $(( $(date +%s) - START )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  cat "$SUMMARY.body"
} > "$SUMMARY"
rm -f "$SUMMARY.head" "$SUMMARY.body"
echo "wrote $SUMMARY (commit benchmarks/results/)"
