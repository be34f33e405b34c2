#!/usr/bin/env bash
# tools/demo.sh: the product end to end on one machine (`make demo`): a fresh
# local server with a demo project, the instrumented samples running against
# it in rounds (so the dashboard has trends, errors, an incident, an exception
# and an underused function), the dashboard address, and the server kept
# running with a light live load until Ctrl-C.
#
# CODENSM_DEMO_PORT (default 8650) and CODENSM_DEMO_ROUNDS (default 12 rounds,
# 5 s apart) change the defaults; CODENSM_DEMO_ONCE=1 stops after the rounds
# (used by the test that checks this script).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${CODENSM_BUILD:-build}
port=${CODENSM_DEMO_PORT:-8650}
rounds=${CODENSM_DEMO_ROUNDS:-12}
dir=$B/demo
server=$B/bin/codensm-server

for f in "$server" "$B/samples/shop" "$B/samples/geometry" "$B/samples/host"; do
	[ -x "$f" ] || { echo "demo: '$f' is missing: run 'make' first" >&2; exit 1; }
done
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "demo: port $port is taken: stop what listens there or set CODENSM_DEMO_PORT" >&2
	exit 1
fi

rm -rf "$dir" && mkdir -p "$dir/spool"
db=$dir/codensm.db
created=$("$server" project create demo --plan team --db "$db")
key=$(sed -n 's/^ingest key: //p' <<<"$created")
mkey=$(sed -n 's/^manage key: //p' <<<"$created")
url=$(sed -n 's/^dashboard: //p' <<<"$created" | sed "s/:8650\//:$port\//")

"$server" --db "$db" --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
server_pid=$!
live_pid=
stop() {
	[ -n "$live_pid" ] && kill "$live_pid" 2>/dev/null
	kill "$server_pid" 2>/dev/null
	wait 2>/dev/null
}
trap 'stop; echo; echo "demo: stopped (data kept in $db)"; exit 0' INT TERM
trap stop EXIT
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
	sleep 0.1
done

export CODENSM_API_KEY=$key
export CODENSM_ENDPOINT=http://127.0.0.1:$port/codensm/ingest
export CODENSM_SPOOL_DIR=$PWD/$dir/spool
export CODENSM_FLUSH_INTERVAL=1
export CODENSM_LOG=quiet
# Business value: a paid order is worth the most, a coupon some, legacy none.
export CODENSM_WEIGHTS="payments=9,checkout.order=5,checkout.coupons=2,legacy=0.1"

# One round: a shop run whose size follows a wave (a trend to look at), the
# C++ sample (exceptions -> errors and an incident chain), the plugin host.
round() {
	local orders=$((400 + 300 * ($1 % 5)))
	CODENSM_SERVICE=shop "$B/samples/shop" "$orders" >/dev/null
	CODENSM_SERVICE=geometry "$B/samples/geometry" >/dev/null 2>&1 || true
	CODENSM_SERVICE=plugins "$B/samples/host" "$B/samples/libdiscounts.so" >/dev/null 2>&1 || true
}

echo "demo: server on 127.0.0.1:$port, database $db"
echo "demo: running the instrumented samples ($rounds rounds)..."
for i in $(seq "$rounds"); do
	round "$i"
	[ "$i" -lt "$rounds" ] && sleep 5
done

calls=$(curl -s -H "Authorization: Bearer ${url##*key=}" \
	"http://127.0.0.1:$port/api/projects/demo/summary?window=1h" |
	python3 -c 'import json,sys; d=json.load(sys.stdin); print("%d calls, %d errors, NSM %.0f" % (d["calls"], d["errors"], d["nsm"]))')
echo "demo: the server has $calls"
echo
echo "  Dashboard: $url"
echo "  The same, with probes (manage key): ${url%%key=*}key=$mkey"
echo "  Ingest key for your own programs: $key"
echo

[ "${CODENSM_DEMO_ONCE:-0}" = 1 ] && exit 0
echo "demo: a light live load keeps running; Ctrl-C stops the server"
( i=0; while :; do i=$((i + 1)); round "$i"; sleep 10; done ) &
live_pid=$!
wait "$server_pid"
