#!/usr/bin/env bash
# tests/suites/real.sh: real C programs from their Debian source packages
# (bzip2, zlib, lua5.4), built plain and instrumented, run against a real
# codensm-server and under uftrace (tests/real/test_real.py); prints TAP.
# The sources and builds are cached in $CODENSM_BUILD/real (git-ignored).
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
. tests/suite-lib.sh
# The runtime (and its .pc) and the server the tests start.
build_or_bail real "the runtime and the server build" runtime server
for tool in uftrace apt-get dpkg-source; do
	if ! command -v $tool >/dev/null; then
		echo "not ok 1 - $tool is installed (bash .ci/deps)"
		echo "1..1"
		exit 1
	fi
done
CODENSM_BUILD=$B exec timeout 600 python3 tests/tap.py tests/real
