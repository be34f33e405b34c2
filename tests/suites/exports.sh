#!/usr/bin/env bash
# tests/suites/exports.sh: the shared runtime exports exactly what it means
# to: the two hooks, every codensm_* function that codensm.h declares, and
# the deliberate interposers (C++ throw/catch for exception errors, dlclose
# to forget an unloaded library's functions).  Anything else visible in
# `nm -D` is a leaked private symbol; anything missing breaks users.
set -u
cd "$(dirname "$0")/../.."
B=${CODENSM_BUILD:-build}
so=$B/lib/libcodensm-rt.so
n=0
tap() { n=$((n + 1)); echo "$1 $n - $2"; }

expected=$(mktemp) actual=$(mktemp)
trap 'rm -f "$expected" "$actual"' EXIT
{
	printf '%s\n' __cyg_profile_func_enter __cyg_profile_func_exit \
		__cxa_throw __cxa_rethrow __cxa_begin_catch dlclose
	# Every function the public header declares (not the static inline helper).
	grep -oE '\bcodensm_[a-z_]+\(' runtime/include/codensm.h | tr -d '(' |
		grep -v '^codensm__'
} | sort -u >"$expected"

if [ ! -f "$so" ]; then
	tap "not ok" "$so exists (run make first)"
	echo "1..$n"
	exit 1
fi
tap ok "$so exists"

nm -D --defined-only "$so" | awk '$2 ~ /^[TWVBDRGSi]$/ { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$actual"
if diff -u "$expected" "$actual" >/dev/null; then
	tap ok "nm -D of libcodensm-rt.so lists exactly the intended exports ($(wc -l <"$expected") symbols)"
else
	tap "not ok" "nm -D of libcodensm-rt.so lists exactly the intended exports"
	diff -u --label intended --label 'nm -D' "$expected" "$actual" | sed 's/^/#   /'
fi

# The soname is versioned, so an incompatible runtime can sit beside this one.
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = "libcodensm-rt.so.0" ]; then
	tap ok "the shared runtime's soname is libcodensm-rt.so.0"
else
	tap "not ok" "the shared runtime's soname is libcodensm-rt.so.0"
	echo "#   expected: libcodensm-rt.so.0"
	echo "#   got:      '$soname'"
fi

echo "1..$n"
