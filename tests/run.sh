#!/usr/bin/env bash
# tests/run.sh: run every suite of `make test`, each printing TAP, and end
# with one line "N passed, N failed".  A suite is a command; its "ok" and
# "not ok" lines are counted, and a suite that exits non-zero without any
# "not ok" line counts as one failure, so a crash can never pass silently.
# SUITES="unit integration" limits the run to those suites.
# Each suite has a time budget (seconds, below; a suite that hangs is
# killed with its process group and counts as a failure), so the whole run
# stays bounded whatever goes wrong: the budgets add up to 70 minutes, a
# normal run takes about 12.
set -u
cd "$(dirname "$0")/.."
export CODENSM_BUILD=${CODENSM_BUILD:-build}
mkdir -p tests/artifacts
passed=0 failed=0 failed_names=()

budget() { # suite name -> seconds
	case $1 in
	unit | exports | demo) echo 180 ;;
	browser | load | fuzz) echo 420 ;;
	integration | server) echo 600 ;;
	real | packaging) echo 900 ;;
	sanitizers) echo 1200 ;;
	*) echo 600 ;;
	esac
}

run_suite() { # name, command...
	local name=$1; shift
	case " ${SUITES:-$name} " in *" $name "*) ;; *) return ;; esac
	local log=tests/artifacts/$name.tap start=$SECONDS limit
	limit=$(budget "$name")
	echo "# suite $name"
	timeout -k 20 "$limit" "$@" >"$log" 2>&1
	local rc=$?
	local ok nok
	ok=$(grep -cE '^ok ' "$log")
	nok=$(grep -cE '^not ok ' "$log")
	grep -E '^(not ok|#)' "$log" | grep -vE '^# (ok|PASS)' | head -n 60
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		nok=$((nok + 1))
		echo "not ok - suite $name did not finish within its $limit s budget (killed; see $log)"
		tail -n 20 "$log"
	elif [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
		nok=1
		echo "not ok - suite $name exited $rc without reporting a failure (see $log)"
		tail -n 20 "$log"
	fi
	[ "$nok" -gt 0 ] && failed_names+=("$name")
	passed=$((passed + ok)) failed=$((failed + nok))
	echo "# suite $name: $ok passed, $nok failed ($((SECONDS - start)) s)"
}

unit_suite() { # build dir
	local rc=0 t
	for t in "$1"/tests/unit/test_*; do
		[ -x "$t" ] || continue
		echo "# $t"
		CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 5 120 "$t" || rc=1
	done
	return $rc
}

export -f unit_suite
run_suite unit bash -c 'unit_suite build'
for s in tests/suites/*.sh; do
	[ -f "$s" ] || continue
	n=$(basename "$s" .sh)
	run_suite "$n" bash "$s"
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed suites: ${failed_names[*]} (logs in tests/artifacts/)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
