# shellcheck shell=bash
# tests/suite-lib.sh: what the suites in tests/suites share; sourced from
# the top of the tree (not a suite itself, so not in tests/suites).

# Build make targets $3... into build/, the output in
# tests/artifacts/$1-build.log; if that fails, print TAP saying "$2" failed
# with the log's tail, and exit 1.  With $B another tree (build-asan),
# whoever set CODENSM_BUILD made it: nothing is built.
build_or_bail() {
	local log=tests/artifacts/$1-build.log what=$2
	shift 2
	mkdir -p tests/artifacts
	if [ "$B" = build ] && ! make --no-print-directory "$@" >"$log" 2>&1; then
		echo "not ok 1 - $what (make $*)"
		tail -n 30 "$log" | sed 's/^/#   /'
		echo "1..1"
		exit 1
	fi
}
