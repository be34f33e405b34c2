#!/usr/bin/env bash
# tests/suites/scale.sh: several codensm-server processes on one store
# (tests/scale/): two and three servers with clients spread over them
# (sums, quotas, deduplication, project create), a server killed -9 under
# load, and PostgreSQL stopped and started again under load; each on
# SQLite (several processes on one WAL file) and on a throwaway PostgreSQL
# cluster (tests/pgcluster.sh).  TAP out.
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
. tests/suite-lib.sh
build_or_bail scale "the server builds" "$B/bin/codensm-server"
exec python3 tests/tap.py tests/scale
