#!/usr/bin/env bash
# tests/suites/fuzz.sh: the libFuzzer targets of tests/fuzz/: replay the
# seed corpus and every regression input (each must run clean), then fuzz
# each target for FUZZ_SECONDS (default 60) from a copy of its corpus.
# fuzz_ingest feeds bodies to the ingest handler itself; fuzz_http sends
# requests through the server's HTTP layer (tests/fuzz/fuzz_http.c).
# A crash is a "not ok" naming the input that libFuzzer saved under
# tests/artifacts/fuzz/; keep it in tests/fuzz/regressions/TARGET/.  TAP out.
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
secs=${FUZZ_SECONDS:-60}
art=tests/artifacts/fuzz
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
nok() { n=$((n + 1)); echo "not ok $n - $*"; }

if ! command -v clang >/dev/null; then
	nok "clang is installed (make deps)"
	echo "1..$n"; exit 1
fi
targets="ingest http config symcache"
if ! make --no-print-directory B="$B" $(printf "$B/fuzz/fuzz_%s " $targets) >"$art.build.log" 2>&1; then
	nok "the fuzz targets build"; sed 's/^/#   /' "$art.build.log" | tail -n 20
	echo "1..$n"; exit 1
fi
rm -rf "$art" && mkdir -p "$art"

for t in $targets; do
	bin=$B/fuzz/fuzz_$t
	# stderr holds the targets' own complaints (one line per bad value):
	# kept in the log, not on the terminal
	if "$bin" tests/fuzz/corpus/$t/* >"$art/$t-corpus.log" 2>&1; then
		ok "fuzz_$t runs its $(ls tests/fuzz/corpus/$t | wc -l) seed inputs clean"
	else
		nok "fuzz_$t runs its seed inputs clean"; grep -A12 -m1 'ERROR\|invariant\|fuzz_' "$art/$t-corpus.log" | sed 's/^/#   /'
	fi
	regs=(tests/fuzz/regressions/$t/*)
	if [ ! -e "${regs[0]}" ]; then
		ok "fuzz_$t has no regression inputs yet"
	elif "$bin" "${regs[@]}" >"$art/$t-regressions.log" 2>&1; then
		ok "fuzz_$t replays its ${#regs[@]} regression inputs clean"
	else
		nok "fuzz_$t replays its regression inputs clean"; grep -A12 -m1 'ERROR\|invariant\|fuzz_' "$art/$t-regressions.log" | sed 's/^/#   /'
	fi
done

for t in $targets; do
	bin=$B/fuzz/fuzz_$t
	work=$art/$t-corpus
	mkdir -p "$work" && cp tests/fuzz/corpus/$t/* "$work/"
	maxlen=$([ $t = config ] && echo 4096 || echo 16384)
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$maxlen" \
		-dict=tests/fuzz/$t.dict -close_fd_mask=2 -print_final_stats=1 \
		-artifact_prefix="$art/$t-" "$work" >"$art/$t-fuzz.log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$art/$t-fuzz.log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$art/$t-fuzz.log" | tail -n 1)
	crash=$(ls "$art/$t-"crash-* "$art/$t-"leak-* "$art/$t-"timeout-* "$art/$t-"oom-* 2>/dev/null | head -n 1)
	echo "# fuzz_$t: ${runs:-?} executions in ${secs} s, ${cov:-no coverage line}, corpus $(ls "$work" | wc -l) inputs"
	if [ $rc -eq 0 ] && [ -z "$crash" ]; then
		ok "fuzz_$t runs ${secs} s (${runs:-?} inputs) without a crash, leak or timeout"
	else
		nok "fuzz_$t runs ${secs} s without a crash (exit $rc; input ${crash:-none}: keep it in tests/fuzz/regressions/$t/)"
		grep -B2 -A20 -m1 'ERROR\|invariant\|fuzz_' "$art/$t-fuzz.log" | sed 's/^/#   /'
	fi
done
echo "1..$n"
