#!/usr/bin/env bash
# One device call: filtered-kernel launch variants (slot atomics, warps, chunks per program
# and their pipelining stages, running bound, refine, sampled row bound) on the GPU.md
# shapes; optionally the bare scan probe (PROBE=R:C,...), the public API (PUBLIC=1) and an
# ncu pass.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv > "$OUT/smi.txt"
# LAUNCH=1: the public API's per-call overhead, legacy vs FFI launches (and, LAUNCH_NOCB=1,
# the FFI launches with XLA's command buffers off), before everything else.
if [ "${LAUNCH:-0}" = 1 ]; then
  timeout ${LAUNCH_LIMIT:-150} python3 benchmarks/launch_overhead.py --out "$OUT" \
    > "$OUT/launch.log" 2>&1
  echo "launch rc=$?" >> "$OUT/launch.log"
  grep "|" "$OUT/launch.log" | tail -30
  # an FFI lowering that failed anywhere: the rest of the call runs the legacy launches
  if [ "${SPIRALJAX_TRITON_FFI:-0}" = 1 ] && ! python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; \
sys.exit(any('error' in x.get('ffi', {}) for x in r))" "$OUT/launch_overhead.json"; then
    echo "FFI launches failed: SPIRALJAX_TRITON_FFI=0 from here"
    export SPIRALJAX_TRITON_FFI=0
  fi
  if [ "${LAUNCH_NOCB:-0}" = 1 ]; then
    XLA_FLAGS="--xla_gpu_enable_command_buffer=" timeout ${LAUNCH_LIMIT:-150} \
      python3 benchmarks/launch_overhead.py --out "$OUT" --tag nocb \
      --shapes 8:1024:8,1024:65536:16 > "$OUT/launch_nocb.log" 2>&1
    echo "launch nocb rc=$?" >> "$OUT/launch_nocb.log"
    grep "|" "$OUT/launch_nocb.log" | tail -12
  fi
fi
if [ -n "${PROBE:-}" ]; then
  timeout ${PROBE_LIMIT:-120} python3 benchmarks/rankk_filtered.py --probe "$PROBE" --out "$OUT" \
    > "$OUT/probe.log" 2>&1
  echo "probe rc=$?" >> "$OUT/probe.log"
  tail -25 "$OUT/probe.log"
fi
SHAPES=${SHAPES:-top:1024:65536:16,top:1024:65536:128,top:4096:32768:50,top:8192:4096:8,top:64:1048576:256,top:1024:65536:1024,top:1:67108864:1024,top:256:131072:2048,mid:1024:65536:16,top:1:67108864:128,top:1024:65536:16:bfloat16,mid:4096:32768:50}
timeout ${LIMIT:-520} python3 benchmarks/rankk_filtered.py --variants --shapes "$SHAPES" \
  --only "${ONLY:-}" --out "$OUT" > "$OUT/variants.log" 2>&1
echo "variants rc=$?" >> "$OUT/variants.log"
grep -v "^  " "$OUT/variants.log" | tail -30
# PUBLIC=1: the public API on every GPU.md shape (benchmarks/rankk.py --mode gpu, its
# rankk.json holding the gpu section only: merge it into benchmarks/results/rankk.json).
if [ "${PUBLIC:-0}" = 1 ]; then
  timeout ${PUBLIC_LIMIT:-220} python3 benchmarks/rankk.py --mode gpu --out "$OUT" \
    --dtypes ${PUBLIC_DTYPES:-float32,bfloat16} > "$OUT/rankk.log" 2>&1
  echo "rankk rc=$?" >> "$OUT/rankk.log"
  grep -v '^{' "$OUT/rankk.log" | tail -40
fi
# BETWEEN=1: the public API (Top-K) on the shapes between the GPU.md ones, into $OUT/between.
if [ "${BETWEEN:-0}" = 1 ]; then
  timeout ${BETWEEN_LIMIT:-150} python3 benchmarks/rankk.py --mode gpu --shapes between \
    --kinds top --dtypes float32,bfloat16 --out "$OUT/between" > "$OUT/between.log" 2>&1
  echo "between rc=$?" >> "$OUT/between.log"
  grep -v '^{' "$OUT/between.log" | grep "|" | tail -20
fi
# NCU=scan: the scan's occupancy, stall reasons, bandwidth (kth/pick skipped);
# NCU=all: every kernel of the run (the profiled calls last): duration, DRAM bytes and
# throughput only (one pass each); NCU=0: none.
case "${NCU:-scan}" in
  scan)
    timeout ${NCU_LIMIT:-150} ncu --clock-control none -k regex:scan \
      --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
      --section SchedulerStats --section MemoryWorkloadAnalysis \
      python3 benchmarks/rankk_filtered.py --profile ${PROFILE:-1024:65536:16,1024:65536:128} \
      > "$OUT/ncu.txt" 2>&1
    echo "ncu rc=$?" >> "$OUT/ncu.txt"
    grep -E "scan \(|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Stall|Warp Cycles Per Issued|Issued Warp|No Eligible" "$OUT/ncu.txt" | head -120
    ;;
  all)
    timeout ${NCU_LIMIT:-150} ncu --clock-control none --csv \
      --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed \
      python3 benchmarks/rankk_filtered.py --profile ${PROFILE:-1024:65536:16,4096:32768:50} \
      > "$OUT/ncu.txt" 2>&1
    echo "ncu rc=$?" >> "$OUT/ncu.txt"
    tail -60 "$OUT/ncu.txt"
    ;;
esac
# At most 8 files come back from $OUT: the logs, tables and smi.txt go in one archive.
(cd "$OUT" && find . -type f \( -name '*.log' -o -name '*.md' -o -name '*.txt' \) -print0 \
  | tar czf logs.tgz --null -T - --remove-files)
find "$OUT" -type f | sort
