#!/usr/bin/env bash
# One device call: filtered-kernel launch variants (slot atomics, warps, chunks per program
# and their pipelining stages, running bound, refine) on the GPU.md shapes.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv > "$OUT/smi.txt"
SHAPES=${SHAPES:-top:1024:65536:16,top:1024:65536:128,top:4096:32768:50,top:8192:4096:8,top:64:1048576:256,top:1024:65536:1024,top:1:67108864:1024,top:256:131072:2048,mid:1024:65536:16,top:1:67108864:128,top:1024:65536:16:bfloat16,mid:4096:32768:50}
timeout ${LIMIT:-520} python3 benchmarks/rankk_filtered.py --variants --shapes "$SHAPES" --out "$OUT" > "$OUT/variants.log" 2>&1
echo "variants rc=$?" >> "$OUT/variants.log"
grep -v "^  " "$OUT/variants.log" | tail -30
# Where the scan's time goes: occupancy, stall reasons, achieved bandwidth (the second scan
# launch of each call is the timed one; kth/pick skipped).
if [ -n "${NCU:-1}" ]; then
  timeout ${NCU_LIMIT:-150} ncu --clock-control none -k regex:scan \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section SchedulerStats --section MemoryWorkloadAnalysis \
    python3 benchmarks/rankk_filtered.py --profile ${PROFILE:-1024:65536:16,1024:65536:128,1024:65536:16:a1w8p4s3} \
    > "$OUT/ncu.txt" 2>&1
  echo "ncu rc=$?" >> "$OUT/ncu.txt"
  grep -E "scan \(|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit|Stall|Warp Cycles Per Issued|Issued Warp|No Eligible" "$OUT/ncu.txt" | head -120
fi
