#!/usr/bin/env bash
# tests/suites/server.sh: codensm-server's API tests (tests/server/) against
# the built $CODENSM_BUILD/bin/codensm-server, twice: on real SQLite files,
# then on a throwaway PostgreSQL cluster (tests/pgcluster.sh; each server
# of a test gets a fresh schema of it).  TAP out; the PostgreSQL run's
# lines say "[postgresql]".
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
python3 tests/tap.py tests/server
rc=$?

dir=$(mktemp -d /tmp/codensm-server-pg.XXXXXX)
chmod 755 "$dir"
trap 'bash tests/pgcluster.sh stop "$dir/cluster"; rm -rf "$dir"' EXIT
if ! url=$(bash tests/pgcluster.sh start "$dir/cluster" 2>"$dir/start.log"); then
	echo "not ok - a throwaway PostgreSQL cluster starts (tests/pgcluster.sh): $(tail -1 "$dir/start.log")"
	exit 1
fi
CODENSM_TEST_PG=$url CODENSM_TEST_PG_DIR=$dir/cluster TAP_PREFIX="[postgresql] " \
	python3 tests/tap.py tests/server || rc=1
exit $rc
