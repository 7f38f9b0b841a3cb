#!/usr/bin/env bash
# One device call: filtered-kernel variants (atomic slot strategies) + an ncu kernel breakdown.
set -u
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv > "$OUT/smi.txt"
timeout 400 python3 benchmarks/rankk_filtered.py --variants --out "$OUT" > "$OUT/variants.log" 2>&1
echo "variants rc=$?" >> "$OUT/variants.log"
timeout 150 ncu --clock-control none --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
  python3 benchmarks/rankk_filtered.py --profile 1024:65536:16,1024:65536:128,4096:32768:50,8192:4096:8 > "$OUT/ncu.txt" 2>&1
echo "ncu rc=$?" >> "$OUT/ncu.txt"
tail -30 "$OUT/variants.log"
