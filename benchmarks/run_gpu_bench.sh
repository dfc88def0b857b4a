#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU (H100/H200 class): measure it with `planner bench`, calibrate the
# matching hardware profile from the measurements, and leave everything in $OUT:
#
#   $OUT/bench-gpu.yaml        the BENCH file (raw measurements + provenance: device, driver, CUDA, torch, clocks)
#   $OUT/bench-summary.json    best GEMM/attention/bandwidth figures and what was skipped
#   $OUT/<profile>-measured.yaml  the profile calibrated from it (when the GPU matches a profile)
#   $OUT/calibrate.json        fitted values next to the profile's published ones
#   $OUT/nvidia-smi.txt, $OUT/env.txt, $OUT/bench.log
#
# Usage: OUT=/some/dir benchmarks/run_gpu_bench.sh          (about 2-4 minutes on one H100/H200)
#        BENCH_QUICK=1 ... for the quick sweep (under a minute); BENCH_BUDGET_S=N caps the measuring time.
# Then, to commit the measured profile: copy $OUT/<profile>-measured.yaml to hardware_profiles/measured/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/out}"
BUDGET="${BENCH_BUDGET_S:-240}"
MODEL="${BENCH_MODEL:-llama-3-8b}"
mkdir -p "$OUT"

# planner importable: installed, or from this checkout
if ! python3 -c 'import planner' 2>/dev/null; then
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
PLANNER=(python3 -m planner.cli)
missing=$(python3 - <<'EOF'
import importlib
bad = [m for m in ("torch", "typer", "pydantic", "numpy", "scipy", "rich", "yaml") if importlib.util.find_spec(m) is None]
print(" ".join(bad))
EOF
)
if [ -n "$missing" ]; then
  echo "run_gpu_bench: missing Python packages: $missing (pip install -e '.[bench]')" | tee "$OUT/bench.log" >&2
  exit 2
fi

{ nvidia-smi || true; nvidia-smi topo -m || true; } >"$OUT/nvidia-smi.txt" 2>&1
python3 - >"$OUT/env.txt" 2>&1 <<'EOF'
import torch, platform
print("torch", torch.__version__, "cuda", torch.version.cuda, "python", platform.python_version())
print("cuda available", torch.cuda.is_available(), "devices", torch.cuda.device_count())
for i in range(torch.cuda.device_count()):
    print(i, torch.cuda.get_device_name(i), torch.cuda.get_device_capability(i))
EOF
cat "$OUT/env.txt"

quick=()
[ "${BENCH_QUICK:-0}" = "1" ] && quick=(--quick)
# hard cap a little above the budget: a hung kernel must not eat the machine's time
timeout $((BUDGET + 120)) "${PLANNER[@]}" bench "${quick[@]}" --time-budget-s "$BUDGET" --model "$MODEL" --tp 1 \
  --seq 4096 -o "$OUT/bench-gpu.yaml" -f json >"$OUT/bench-summary.json" 2>"$OUT/bench.log"
rc=$?
cat "$OUT/bench.log" >&2
if [ $rc -ne 0 ] || [ ! -s "$OUT/bench-gpu.yaml" ]; then
  echo "run_gpu_bench: planner bench failed (exit $rc)" >&2
  exit $rc
fi

name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
case "$name" in
  *H200*) profile=h200 ;;
  *H100*PCIe*) profile=h100-pcie ;;
  *H100*) profile=h100-sxm ;;
  *A100*80GB*) profile=a100-80gb ;;
  *A100*) profile=a100-40gb ;;
  *B200*) profile=b200 ;;
  *V100*) profile=v100-sxm2 ;;
  *) profile="" ;;
esac
if [ -n "$profile" ]; then
  "${PLANNER[@]}" calibrate "$OUT/bench-gpu.yaml" --into "$profile" --name "$profile-measured" \
    -o "$OUT/$profile-measured.yaml" -f json >"$OUT/calibrate.json" 2>>"$OUT/bench.log" \
    || echo "run_gpu_bench: calibrate failed (see $OUT/bench.log)" >&2
  # the same against the published numbers: measured vs published vs datasheet side by side
  python3 - "$OUT/calibrate.json" <<'EOF' || true
import json, sys
d = json.load(open(sys.argv[1]))
for r in d["fitted"]:
    print(f"{r['key']:<48} measured {r['fitted']:<12.5g} profile {r['profile'] if r['profile'] is None else format(r['profile'], '.5g')}")
EOF
else
  echo "run_gpu_bench: no profile matches '$name'; calibrate by hand: planner calibrate $OUT/bench-gpu.yaml --into PROFILE" >&2
fi
echo "run_gpu_bench: wrote $(ls "$OUT" | tr '\n' ' ')"
