#!/usr/bin/env bash
# tests/suites/analyze.sh: `codensm analyze` (tests/analyze/test_*.py):
# hand-derived flows of the sample project, names equal to the runtime's,
# build-id keyed files, bad databases; prints TAP.
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
log=tests/artifacts/analyze-build.log
mkdir -p tests/artifacts
if [ "$B" = build ] && ! make --no-print-directory cli analyze >"$log" 2>&1; then
	echo "not ok 1 - codensm and codensm-analyze build (make cli analyze)"
	tail -n 30 "$log" | sed 's/^/#   /'
	echo "1..1"
	exit 1
fi
CODENSM_BUILD=$B exec python3 tests/tap.py tests/analyze
