#!/usr/bin/env bash
# tests/run.sh: run every suite of `make test`, each printing TAP, and end
# with one line "N passed, N failed".  A suite is a command; its "ok" and
# "not ok" lines are counted, and a suite that exits non-zero without any
# "not ok" line counts as one failure, so a crash can never pass silently.
# SUITES="unit integration" (or the suite names as arguments:
# tests/run.sh unit integration) limits the run to those suites.
#
# A skipped test ("ok N - what # SKIP why") is not a pass: it is counted
# apart, and listed with its suite and reason in the summary.  With CI=true
# a skip fails the run unless tests/skips.allow lists its suite and reason
# (see that file): a test that cannot run in CI is a decision written down,
# never a surprise.  SKIPS_ALLOW names another list (the runner's own test).
# Each suite has a time budget (seconds, below; a suite that hangs is
# killed with its process group and counts as a failure), so the whole run
# stays bounded whatever goes wrong: the budgets add up to 95 minutes, a
# normal run takes about 15.
set -u
cd "$(dirname "$0")/.."
[ $# -eq 0 ] || SUITES="$*"
export CODENSM_BUILD=${CODENSM_BUILD:-build}
SUITE_DIR=${SUITE_DIR:-tests/suites}
SKIPS_ALLOW=${SKIPS_ALLOW:-tests/skips.allow}
mkdir -p tests/artifacts
passed=0 failed=0 skipped=0 failed_names=() skip_lines=()

# Is a skip in suite $1 with reason $2 listed in $SKIPS_ALLOW?  Its lines
# are "suite: reason", the reason a shell pattern ('*' for any text);
# '#' starts a comment line.
skip_allowed() {
	local line suite pattern
	[ -f "$SKIPS_ALLOW" ] || return 1
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in '#'* | '') continue ;; esac
		suite=${line%%:*}
		pattern=${line#*:}
		pattern=${pattern# }
		# shellcheck disable=SC2053 # the pattern is a glob on purpose
		[ "$suite" = "$1" ] && [[ $2 == $pattern ]] && return 0
	done <"$SKIPS_ALLOW"
	return 1
}

# The skips in suite $1's log $2: each listed, counted, and in CI an
# unlisted one is a failure.  Prints the number of such failures.
count_skips() {
	local name=$1 log=$2 line what why bad=0 verdict
	while IFS= read -r line; do
		what=$(sed -E 's/^ok [0-9]* *-? *//; s/ *# *[Ss][Kk][Ii][Pp]( .*)?$//' <<<"$line")
		why=$(sed -nE 's/.*# *[Ss][Kk][Ii][Pp] *(.*)$/\1/p' <<<"$line")
		skipped=$((skipped + 1))
		if skip_allowed "$name" "$why"; then
			verdict="allowed in $SKIPS_ALLOW"
		elif [ "${CI:-}" = true ]; then
			verdict="not in $SKIPS_ALLOW: a failure in CI"
			bad=$((bad + 1))
			echo "not ok - $name: '$what' skipped ($why), and $SKIPS_ALLOW does not allow it" >&2
		else
			verdict="not in $SKIPS_ALLOW: fails with CI=true"
		fi
		skip_lines+=("$name: $what -- $why [$verdict]")
	done < <(grep -iE '^ok .*# *SKIP' "$log")
	return $bad
}

budget() { # suite name -> seconds
	case $1 in
	runner) echo 60 ;;
	unit | exports | demo) echo 180 ;;
	browser | load | scale) echo 420 ;;
	fuzz) echo 540 ;;
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
	local ok nok nskip before=$skipped bad=0
	ok=$(grep -cE '^ok ' "$log")
	nok=$(grep -cE '^not ok ' "$log")
	grep -E '^(not ok|#)' "$log" | grep -vE '^# (ok|PASS)' | head -n 60
	count_skips "$name" "$log" 2>&1 || bad=$?
	nskip=$((skipped - before))
	ok=$((ok - nskip)) nok=$((nok + bad))
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
	echo "# suite $name: $ok passed, $nok failed, $nskip skipped ($((SECONDS - start)) s)"
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

# A name in SUITES that is no suite is a mistake, not an empty run.
for want in ${SUITES:-}; do
	[ "$want" = unit ] || [ -f "$SUITE_DIR/$want.sh" ] || {
		echo "tests/run.sh: no suite named '$want' (suites: unit $(ls "$SUITE_DIR" | sed -n 's/\.sh$//p' | tr '\n' ' '))" >&2
		exit 2
	}
done

export -f unit_suite
run_suite unit bash -c 'unit_suite build'
for s in "$SUITE_DIR"/*.sh; do
	[ -f "$s" ] || continue
	n=$(basename "$s" .sh)
	run_suite "$n" bash "$s"
done

echo
if [ "$skipped" -gt 0 ]; then
	echo "skipped tests (suite: test -- reason):"
	printf '  %s\n' "${skip_lines[@]}"
fi
[ ${#failed_names[@]} -gt 0 ] && echo "failed suites: ${failed_names[*]} (logs in tests/artifacts/)"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
