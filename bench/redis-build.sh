#!/usr/bin/env bash
# bench/redis-build.sh SRC OUT KIND [RT_LINK]: build redis-server and
# redis-benchmark from Debian's redis source (SRC, unpacked by
# build-aux/fetch-source.sh) into OUT, with redis's own Makefile:
#   KIND plain  -O2 -g, no instrumentation
#   KIND inst   the same + -finstrument-functions on redis's own sources
#               (not its bundled deps: hiredis, lua, ...), linked with
#               RT_LINK (libcodensm-rt)
# libc's malloc and no TLS or systemd: the same in both builds, and a
# build that takes minutes, not tens.  OUT is a copy of the sources, built
# once: make skips it while OUT/src/redis-server is newer than this script.
set -euo pipefail
src=$1 out=$2 kind=$3 rtlink=${4:-}
jobs=${JOBS:-2}
rm -rf "$out"
mkdir -p "$out"
cp -a "$src/." "$out/"
vars=(MALLOC=libc USE_SYSTEMD=no BUILD_TLS=no OPTIMIZATION=-O2)
if [ "$kind" = inst ]; then
	vars+=("REDIS_CFLAGS=-finstrument-functions" "REDIS_LDFLAGS=$rtlink")
fi
make -C "$out/src" -j"$jobs" "${vars[@]}" redis-server redis-benchmark >"$out/build.log" 2>&1 ||
	{ tail -30 "$out/build.log" >&2; echo "redis-build: $kind build failed (log: $out/build.log)" >&2; exit 1; }
