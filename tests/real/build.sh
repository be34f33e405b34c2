#!/usr/bin/env bash
# tests/real/build.sh PROGRAM...: fetch each real program from its Debian
# source package and build it twice with its own build system, the way a
# user would:
#
#   $CODENSM_BUILD/real/PROGRAM/plain   -O2 -g, no instrumentation
#   $CODENSM_BUILD/real/PROGRAM/inst    the same + -finstrument-functions in
#                                       CFLAGS and `pkg-config --libs codensm-rt`
#                                       (+ an rpath to the uninstalled runtime)
#                                       in LDFLAGS
#
# PROGRAM is bzip2, zlib or lua (lua5.4).  The unpacked sources stay in
# $CODENSM_BUILD/real/src (git-ignored, never committed): build-aux/fetch-source.sh
# downloads them once (with a private apt state under it when the machine's
# apt has no deb-src entries; the machine's apt sources are never changed).
# A tree is rebuilt only when this script, the compiler, the
# package version or the runtime's link flags change (the runtime itself is a
# shared library: a new build of it needs no relink).  Prints one line per
# program; build logs go to $CODENSM_BUILD/real/PROGRAM/{plain,inst}.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${CODENSM_BUILD:-build}
R=$ROOT/$B/real
mkdir -p "$R"
export PKG_CONFIG_PATH=$ROOT/$B/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pkg-config --exists codensm-rt || { echo "build.sh: no codensm-rt.pc in $B/lib/pkgconfig: run make first" >&2; exit 1; }
JOBS=${JOBS:-2}

# What a user adds to their build: nothing but these two.
INST_CFLAGS="-finstrument-functions"
INST_LDFLAGS="$(pkg-config --libs codensm-rt) -Wl,-rpath,$(pkg-config --variable=libdir codensm-rt)"

# Two test runs at once share the cache: one builds, the other waits.
exec 9>"$R/.lock"
flock 9

package() { case $1 in lua) echo lua5.4 ;; *) echo "$1" ;; esac; }

# build_PROGRAM DIR KIND (plain|inst): runs in a fresh copy of the sources.
build_bzip2() { # its Makefile: CFLAGS/LDFLAGS on the make command line
	local cflags="-Wall -Winline -O2 -g -D_FILE_OFFSET_BITS=64" ldflags=
	if [ "$2" = inst ]; then cflags+=" $INST_CFLAGS"; ldflags=$INST_LDFLAGS; fi
	# Debian's Makefile links bzip2 against the libbz2.so it builds (and
	# `make test` runs it with LD_LIBRARY_PATH=.): both are instrumented.
	make -C "$1" -j"$JOBS" bzip2 CFLAGS="$cflags" LDFLAGS="$ldflags"
	# What `make check` would pass again, so it never rebuilds with others.
	printf '%s\n' "CFLAGS=$cflags" "LDFLAGS=$ldflags" >"$1/.codensm-make-vars"
}

build_zlib() { # ./configure reads CFLAGS/LDFLAGS from the environment
	local cflags="-O2 -g" ldflags=
	if [ "$2" = inst ]; then cflags+=" $INST_CFLAGS"; ldflags=$INST_LDFLAGS; fi
	(cd "$1" && CFLAGS="$cflags" LDFLAGS="$ldflags" ./configure --static)
	make -C "$1" -j"$JOBS" all
}

build_lua() { # upstream Makefile: MYCFLAGS/MYLDFLAGS are the user's knobs
	# Debian's packaging patch turns the Makefiles into libtool rules for
	# dh (shared liblua5.4.so, C and C++ flavours): take it out again to
	# build lua the upstream way; the other patches (paths, CVE fixes) stay.
	# luaconf.h then wants the header debian/rules writes.
	(cd "$1" && patch -s -R -p1 <debian/patches/0001-build-system.patch)
	echo "#define DEB_HOST_MULTIARCH \"$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)\"" \
		>"$1/src/lua5.4-deb-multiarch.h"
	# Three of Lua's own knobs (lstate.c, llimits.h, ltablib.c) make a run
	# repeatable: a fixed string-hash seed (by default time() and ASLR
	# addresses mixed, so hash collisions -- hence some call counts --
	# vary), one slot in the C-string cache of lua_pushstring & co (by
	# default the slot is the string's address modulo 53: hits, hence
	# luaS_newlstr calls, vary with ASLR and with the size of the
	# environment above argv on the stack), and table.sort's pivot (by
	# default randomised from clock() and time() when a partition comes out
	# unbalanced: the comparisons made, hence the work and the calls,
	# vary from run to run and with the CPU time the process used before).
	local cflags="-g '-Dluai_makeseed(L)=0x2545F491u' -DSTRCACHE_N=1 -DSTRCACHE_M=2 '-Dl_randomizePivot()=0u'" ldflags=
	if [ "$2" = inst ]; then cflags+=" $INST_CFLAGS"; ldflags=$INST_LDFLAGS; fi
	make -C "$1" -j"$JOBS" linux MYCFLAGS="$cflags" MYLDFLAGS="$ldflags"
}

for prog in "$@"; do
	pkg=$(package "$prog")
	declare -F "build_$prog" >/dev/null || { echo "build.sh: unknown program '$prog'" >&2; exit 2; }
	bash build-aux/fetch-source.sh "$pkg" "$R/src"
	src=$(readlink -f "$R/src/$pkg")
	key=$( { cat "$0"; basename "$src"; gcc --version | head -1; echo "$INST_LDFLAGS"; } | sha256sum | cut -c1-16)
	dir=$R/$prog
	if [ "$(cat "$dir/stamp" 2>/dev/null)" = "$key" ]; then
		echo "$prog: up to date ($(basename "$src"), $dir)"
		continue
	fi
	start=$SECONDS
	rm -rf "$dir"
	mkdir -p "$dir"
	for kind in plain inst; do
		cp -a "$src" "$dir/$kind"
		if ! "build_$prog" "$dir/$kind" "$kind" >"$dir/$kind.log" 2>&1; then
			tail -n 30 "$dir/$kind.log" >&2
			echo "build.sh: building $prog ($kind) failed, log in $dir/$kind.log" >&2
			exit 1
		fi
	done
	echo "$key" >"$dir/stamp"
	echo "$prog: built plain and instrumented ($(basename "$src"), $((SECONDS - start)) s, $dir)"
done
