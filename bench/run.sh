#!/usr/bin/env bash
# `make bench`: mlward vs picklescan / modelscan / fickling / modelaudit (bench/scan_bench.py),
# then the differential fuzz run if bench/fuzz_differential.py exists, then the data-poisoning
# benchmark (mlward vs ART, bench/data_bench.py).
# Extra arguments go to scan_bench.py, e.g. `bash bench/run.sh --datasets dense.pkl`.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

"$PY" bench/scan_bench.py "$@"
status=$?

if [ -f bench/fuzz_differential.py ]; then
  "$PY" bench/fuzz_differential.py --cases 1000000
  fuzz=$?
  if [ "$fuzz" -ne 0 ] && [ "$status" -eq 0 ]; then status=$fuzz; fi
fi
"$PY" bench/data_bench.py --held-out
data=$?
if [ "$data" -ne 0 ] && [ "$status" -eq 0 ]; then status=$data; fi
exit "$status"
