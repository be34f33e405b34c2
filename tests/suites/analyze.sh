#!/usr/bin/env bash
# tests/suites/analyze.sh: `codensm analyze` (tests/analyze/test_*.py):
# hand-derived flows of the sample project, names equal to the runtime's,
# build-id keyed files, bad databases; prints TAP.
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
. tests/suite-lib.sh
build_or_bail analyze "codensm and codensm-analyze build" cli analyze
CODENSM_BUILD=$B exec python3 tests/tap.py tests/analyze
