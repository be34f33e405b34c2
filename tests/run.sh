#!/usr/bin/env bash
# tests/run.sh: run every suite of `make test`, each printing TAP, and end
# with one line "N passed, N failed".  A suite is a command; its "ok" and
# "not ok" lines are counted, and a suite that exits non-zero without any
# "not ok" line counts as one failure, so a crash can never pass silently.
# SUITES="unit integration" limits the run to those suites.
set -u
cd "$(dirname "$0")/.."
export CODENSM_BUILD=${CODENSM_BUILD:-build}
mkdir -p tests/artifacts
passed=0 failed=0 failed_names=()

run_suite() { # name, command...
	local name=$1; shift
	case " ${SUITES:-$name} " in *" $name "*) ;; *) return ;; esac
	local log=tests/artifacts/$name.tap start=$SECONDS
	echo "# suite $name"
	"$@" >"$log" 2>&1
	local rc=$?
	local ok nok
	ok=$(grep -cE '^ok ' "$log")
	nok=$(grep -cE '^not ok ' "$log")
	grep -E '^(not ok|#)' "$log" | grep -vE '^# (ok|PASS)' | head -n 60
	if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
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
		CMOCKA_MESSAGE_OUTPUT=TAP "$t" || rc=1
	done
	return $rc
}

run_suite unit unit_suite build
for s in tests/suites/*.sh; do
	[ -f "$s" ] || continue
	n=$(basename "$s" .sh)
	run_suite "$n" bash "$s"
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed suites: ${failed_names[*]} (logs in tests/artifacts/)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
