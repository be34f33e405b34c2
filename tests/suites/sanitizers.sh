#!/usr/bin/env bash
# tests/suites/sanitizers.sh: the runtime's unit tests under AddressSanitizer +
# UndefinedBehaviorSanitizer and under ThreadSanitizer, the integration tests
# against the ASan runtime, the server's tests against the ASan server, and
# valgrind memcheck on an instrumented sample.
# Any sanitizer report fails the test that produced it (TAP out).
set -u
cd "$(dirname "$0")/../.."
n=0
tap() { # ok|not ok, description
	n=$((n + 1)); echo "$1 $n - $2"
}

export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp

# Each test that skipped in a pass summed up in one line above ($1, its TAP
# log), with its reason, for run.sh to count and check against
# tests/skips.allow; $2 names the pass.
skips() {
	local line
	while IFS= read -r line; do
		tap ok "$2: $line"
	done < <(grep -iE '^ok .*# *SKIP' "$1" | sed -E 's/^ok [0-9]+ *-? *//')
}

for san in asan tsan; do
	up=$(echo "$san" | tr a-z A-Z)
	if ! make --no-print-directory "$up=1" runtime unit-tests >"tests/artifacts/build-$san.log" 2>&1; then
		tap "not ok" "the runtime and its unit tests build with $up=1"
		tail -n 30 "tests/artifacts/build-$san.log" | sed 's/^/#   /'
		continue
	fi
	tap ok "the runtime and its unit tests build with $up=1"
	for t in build-$san/tests/unit/test_*; do
		[ -x "$t" ] || continue
		log=tests/artifacts/$san-$(basename "$t").log
		if CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$log" 2>&1 && ! grep -qE 'Sanitizer|runtime error:' "$log"; then
			tap ok "$(basename "$t") passes under $up with no sanitizer report"
		else
			tap "not ok" "$(basename "$t") passes under $up with no sanitizer report"
			grep -E 'not ok|ERROR|WARNING|runtime error' "$log" | head -n 20 | sed 's/^/#   /'
		fi
	done
done

# The integration tests again, with programs linked against the ASan runtime.
if make --no-print-directory ASAN=1 all >tests/artifacts/build-asan-all.log 2>&1; then
	log=tests/artifacts/asan-integration.log
	if CODENSM_BUILD=build-asan CODENSM_SANITIZER=asan python3 tests/tap.py tests/integration >"$log" 2>&1 \
		&& ! grep -qE 'Sanitizer|runtime error:' "$log"; then
		tap ok "the integration tests pass against the ASan+UBSan runtime with no report"
		skips "$log" "ASan runtime"
	else
		tap "not ok" "the integration tests pass against the ASan+UBSan runtime with no report"
		# A failing test's own diagnostics (its last lines name the run) too.
		grep -E -A 25 '^not ok|ERROR: |runtime error' "$log" | head -n 60 | sed 's/^/#   /'
	fi
else
	tap "not ok" "everything builds with ASAN=1"
	tail -n 30 tests/artifacts/build-asan-all.log | sed 's/^/#   /'
fi

# codensm-server's own tests against its ASan+UBSan build (made above):
# serverlib.py fails a test class whose server does not exit 0 on SIGTERM
# or left a sanitizer report on its stderr.
if [ -x build-asan/bin/codensm-server ]; then
	log=tests/artifacts/asan-server.log
	if CODENSM_BUILD=build-asan python3 tests/tap.py tests/server >"$log" 2>&1; then
		tap ok "the server's tests pass against its ASan+UBSan build: no report, exit 0 on SIGTERM"
		skips "$log" "ASan server"
	else
		tap "not ok" "the server's tests pass against its ASan+UBSan build: no report, exit 0 on SIGTERM"
		grep -E -A 25 '^not ok' "$log" | head -n 60 | sed 's/^/#   /'
	fi
else
	tap "not ok" "build-asan/bin/codensm-server exists for the server's tests"
fi

# valgrind memcheck on the shop sample (normal build), no server needed:
# the endpoint is a closed port, so the spool path runs too.
if [ -x build/samples/shop ]; then
	spool=$(mktemp -d)
	log=tests/artifacts/valgrind-shop.log
	if CODENSM_API_KEY=cnsm_test CODENSM_ENDPOINT=http://127.0.0.1:9/codensm/ingest \
		CODENSM_SPOOL_DIR=$spool CODENSM_LOG=quiet \
		valgrind --error-exitcode=99 --errors-for-leak-kinds=definite --leak-check=full \
		build/samples/shop 200 >"$log" 2>&1; then
		tap ok "the shop sample runs under valgrind memcheck with no error"
	else
		tap "not ok" "the shop sample runs under valgrind memcheck with no error"
		grep -E '==[0-9]+== (Invalid|Conditional|Use of|.*definitely lost|ERROR SUMMARY)' "$log" | head -n 20 | sed 's/^/#   /'
	fi
	rm -rf "$spool"
else
	tap "not ok" "build/samples/shop exists for the valgrind run"
fi
echo "1..$n"
