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

# make install: the layout a user gets.  A program built from it sends
# through the installed runtime's own libcurl, and make uninstall takes
# every file away again.  Skipped in a sanitizer build directory.
if [ "$B" = build ]; then
	prefix=$(mktemp -d)
	trap 'rm -f "$expected" "$actual"; rm -rf "$prefix"' EXIT
	if make --no-print-directory install PREFIX="$prefix" >"$prefix.log" 2>&1; then
		tap ok "make install PREFIX=$prefix"
	else
		tap "not ok" "make install PREFIX=$prefix"
		sed 's/^/#   /' "$prefix.log" | tail -20
	fi
	rm -f "$prefix.log"
	missing=
	for f in include/codensm.h lib/libcodensm-rt.so.0 lib/libcodensm-rt.so lib/libcodensm-rt.a \
		lib/pkgconfig/codensm-rt.pc lib/codensm/libcodensm-curl.so.4; do
		[ -e "$prefix/$f" ] || missing="$missing $f"
	done
	if [ -z "$missing" ]; then
		tap ok "installed: the header, the runtime (shared, static, .pc) and its own libcurl"
	else
		tap "not ok" "installed: the header, the runtime (shared, static, .pc) and its own libcurl"
		echo "#   missing:$missing"
	fi
	printf 'static int add(int a) { return a + 1; }\nint main(void) { int s = 0; for (int i = 0; i < 5; i++) s += add(i); return s != 15; }\n' >"$prefix/t.c"
	used=$(cd "$prefix" && cc -g -finstrument-functions t.c -o t -Wl,-rpath,"$prefix/lib" \
		$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs codensm-rt) &&
		CODENSM_LOG=debug CODENSM_API_KEY=cnsm_install_test CODENSM_SYMBOL_CACHE=off \
		CODENSM_ENDPOINT=http://127.0.0.1:9/codensm/ingest CODENSM_SPOOL_DIR="$prefix/spool" \
		./t 2>&1 | sed -n 's/^codensm: libcurl: //p')
	if [ "$used" = "$prefix/lib/codensm/libcodensm-curl.so.4" ]; then
		tap ok "a program built against the installed runtime sends through its own libcurl"
	else
		tap "not ok" "a program built against the installed runtime sends through its own libcurl"
		echo "#   expected: $prefix/lib/codensm/libcodensm-curl.so.4"
		echo "#   got:      '$used'"
	fi
	rm -rf "$prefix/t" "$prefix/t.c" "$prefix/spool"
	make --no-print-directory uninstall PREFIX="$prefix" >/dev/null 2>&1
	left=$(find "$prefix" -type f -o -type l | sed "s|^$prefix/||" | tr '\n' ' ')
	if [ -z "$left" ]; then
		tap ok "make uninstall leaves no file behind"
	else
		tap "not ok" "make uninstall leaves no file behind"
		echo "#   left: $left"
	fi
fi
echo "1..$n"
