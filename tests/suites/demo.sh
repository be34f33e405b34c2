#!/usr/bin/env bash
# tests/suites/demo.sh: `make demo` does what the README says: a server, the
# samples against it, a dashboard address that opens the project's data.
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=tests/artifacts/demo.out
CODENSM_BUILD=$B CODENSM_DEMO_PORT=$port CODENSM_DEMO_ROUNDS=1 CODENSM_DEMO_ONCE=1 \
	timeout 120 bash tools/demo.sh >"$out" 2>&1
rc=$?
n=0
check() { n=$((n + 1)); if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; sed 's/^/#   /' "$out"; fi; }
check "the demo script exits 0 after its rounds" '[ $rc -eq 0 ]'
url=$(sed -n 's/^  Dashboard: //p' "$out")
check "it prints the dashboard address with the project and its key" \
	'[[ "$url" == "http://127.0.0.1:$port/#project=demo&key=cnsmv_"* ]]'
# The server stopped with the script; read the database it left with the
# server again, on a new port, and ask the API what the one round sent.
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$B/bin/codensm-server" --db "$B/demo/codensm.db" --listen "127.0.0.1:$port2" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port2") 2>/dev/null && break; sleep 0.1; done
calls=$(curl -s -H "Authorization: Bearer ${url##*key=}" \
	"http://127.0.0.1:$port2/api/projects/demo/functions?window=1h&q=card_charge&limit=5" |
	python3 -c 'import json,sys; print(" ".join(str(r["calls"]) for r in json.load(sys.stdin)["rows"] if r["name"]=="payments.card.card_charge"))')
# Round 1 runs the shop with 400 + 300 * (1 % 5) = 700 orders: 700 charges.
check "the dashboard API shows exactly the 700 card charges of round one (got '$calls')" '[ "$calls" = 700 ]'
murl=$(sed -n 's/^  The same, with probes (manage key): //p' "$out")
check "it prints the address with the manage key too" \
	'[[ "$murl" == "http://127.0.0.1:$port/#project=demo&key=cnsmm_"* ]]'
made=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer ${murl##*key=}" \
	-d '{"id":"demo-1","target":"payments.card.card_charge","instrument":{"type":"hist"}}' \
	"http://127.0.0.1:$port2/api/projects/demo/probes")
check "its key creates a probe (got HTTP $made)" '[ "$made" = 201 ]'
kill $pid; wait $pid 2>/dev/null
echo "1..$n"
