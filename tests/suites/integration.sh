#!/usr/bin/env bash
# tests/suites/integration.sh: build the samples, then run the Python
# integration tests (tests/integration/test_*.py) against a real local
# receiver; prints TAP.  CODENSM_BUILD picks the build tree (build/ by default).
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
. tests/suite-lib.sh
build_or_bail integration "the samples and the tools build" samples cli server
CODENSM_BUILD=$B exec python3 tests/tap.py tests/integration
