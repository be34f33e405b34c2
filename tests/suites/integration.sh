#!/usr/bin/env bash
# tests/suites/integration.sh: build the samples, then run the Python
# integration tests (tests/integration/test_*.py) against a real local
# receiver; prints TAP.  CODENSM_BUILD picks the build tree (build/ by default).
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
log=tests/artifacts/integration-build.log
mkdir -p tests/artifacts
# Another build tree (build-asan) is made by whoever set CODENSM_BUILD.
if [ "$B" = build ] && ! make --no-print-directory samples cli server >"$log" 2>&1; then
	echo "not ok 1 - the samples and the tools build (make samples cli server)"
	tail -n 30 "$log" | sed 's/^/#   /'
	echo "1..1"
	exit 1
fi
CODENSM_BUILD=$B exec python3 tests/tap.py tests/integration
