#!/usr/bin/env bash
# `make bench`: mlward vs picklescan / modelscan / fickling / modelaudit (bench/scan_bench.py),
# then mlward vs model_signing (bench/sign_bench.py), then the differential fuzz run if
# bench/fuzz_differential.py exists, then the transparency log (bench/log_bench.py: appends/s,
# proof times at 1,000,000 entries, SQLite and PostgreSQL), then the data-poisoning benchmark
# (mlward vs ART, bench/data_bench.py: main scenarios, held-out ones, and a sweep of families of
# variations over seeds nobody tuned on), then the backdoored-model scan over seeds
# (bench/model_scan_bench.py).
# Extra arguments go to scan_bench.py, e.g. `bash bench/run.sh --datasets dense.pkl`.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

# mlward is an editable install here: compile its bytecode as a wheel install does, so start-up
# is measured as users see it (peers' bytecode was compiled by pip when they were installed).
"$PY" -m compileall -q src >/dev/null

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
"$PY" bench/log_bench.py
logs=$?
if [ "$logs" -ne 0 ] && [ "$status" -eq 0 ]; then status=$logs; fi

"$PY" bench/data_bench.py --held-out
data=$?
if [ "$data" -ne 0 ] && [ "$status" -eq 0 ]; then status=$data; fi
"$PY" bench/data_bench.py --sweep 400 401 402 403 404
sweep=$?
if [ "$sweep" -ne 0 ] && [ "$status" -eq 0 ]; then status=$sweep; fi
"$PY" bench/model_scan_bench.py
models=$?
if [ "$models" -ne 0 ] && [ "$status" -eq 0 ]; then status=$models; fi
exit "$status"
