#!/usr/bin/env bash
# `make bench`: mlward vs picklescan / modelscan / fickling / modelaudit (bench/scan_bench.py),
# then mlward vs model_signing (bench/sign_bench.py), then the differential fuzz run if
# bench/fuzz_differential.py exists.
# Extra arguments go to scan_bench.py, e.g. `bash bench/run.sh --datasets dense.pkl`.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

"$PY" bench/scan_bench.py "$@"
status=$?

"$PY" bench/sign_bench.py
sign=$?
if [ "$sign" -ne 0 ] && [ "$status" -eq 0 ]; then status=$sign; fi

if [ -f bench/fuzz_differential.py ]; then
  "$PY" bench/fuzz_differential.py --cases 1000000
  fuzz=$?
  if [ "$fuzz" -ne 0 ] && [ "$status" -eq 0 ]; then status=$fuzz; fi
fi
exit "$status"
