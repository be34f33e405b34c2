#!/usr/bin/env bash
# tests/suites/load.sh: codensm-server under LOAD_CONNECTIONS (default 64)
# concurrent clients on loopback for LOAD_SECONDS (default 20), then again
# with kill -9 and a restart in the middle; the store must equal what was
# acknowledged (tests/load/run_load.py).  Builds the load generator; TAP out.
# The requests per second and latencies are `make bench`'s (bench/run.py).
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
if ! make --no-print-directory B="$B" "$B/tests/load/loadgen" "$B/bin/codensm-server" \
	>tests/artifacts/load.build.log 2>&1; then
	echo "not ok 1 - the load generator and the server build"
	sed 's/^/#   /' tests/artifacts/load.build.log | tail -n 20
	echo "1..1"
	exit 1
fi
exec python3 tests/load/run_load.py "${LOAD_SECONDS:-20}" "${LOAD_CONNECTIONS:-64}"
