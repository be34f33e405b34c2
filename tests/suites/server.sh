#!/usr/bin/env bash
# tests/suites/server.sh: codensm-server's API tests (tests/server/) against
# the built $CODENSM_BUILD/bin/codensm-server and real SQLite files; TAP out.
# Builds nothing: `make` (or `make test`) builds the server first.
set -u
cd "$(dirname "$0")/../.."
export CODENSM_BUILD=${CODENSM_BUILD:-build}
bin=$CODENSM_BUILD/bin/codensm-server
if [ ! -x "$bin" ]; then
	echo "not ok 1 - $bin is built (run make first)"
	echo "1..1"
	exit 1
fi
exec python3 tests/tap.py tests/server
