#!/usr/bin/env bash
# fetch-source.sh: unpack a Debian source package (the real programs of the
# tests and benchmarks, and the runtime's own libcurl).
#
#   build-aux/fetch-source.sh PACKAGE DEST
#
# Leaves the unpacked tree at DEST/PACKAGE (a symlink to PACKAGE-VERSION) and
# does nothing if it is already there.  When apt has no deb-src entries, one
# is added next to the system's own deb entries (same mirrors, same keys) and
# the lists are updated once: this needs root or sudo, and dpkg-dev.
set -euo pipefail
pkg=$1 dest=$2
[ -e "$dest/$pkg/debian/control" ] && exit 0
mkdir -p "$dest"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

# One at a time across processes (make -j of the runtime and the
# benchmarks): the deb-src list and apt's lists are the machine's.
exec 9>"${TMPDIR:-/tmp}/codensm-fetch-source.lock"
flock 9
if ! apt-get source --print-uris "$pkg" >/dev/null 2>&1; then
	list=/etc/apt/sources.list.d/codensm-deb-src.sources
	echo "fetch: no deb-src for '$pkg', adding $list" >&2
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] && [ "$f" != "$list" ] && sed -n '/^Types:.*\bdeb\b/,/^$/p' "$f"
		done | sed 's/^Types:.*/Types: deb-src/'
		# one-line format (older images): "deb URI SUITE COMPONENTS"
		grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
			sed 's/^deb /deb-src /' >"${list%.sources}.list.tmp" || true
	} >"$list.tmp"
	$SUDO mv "$list.tmp" "$list"
	if [ -s "${list%.sources}.list.tmp" ]; then
		$SUDO mv "${list%.sources}.list.tmp" "${list%.sources}.list"
	else
		rm -f "${list%.sources}.list.tmp"
	fi
	$SUDO apt-get update -qq
fi

cd "$dest"
# The candidate first; if its files are gone from the mirror (a security
# update listed in the index but not served: 404), every other version
# the lists know, newest first.  Any of them is upstream's code.
if ! apt-get source -qq "$pkg" >/dev/null 2>apt-source.log; then
	got=
	for v in $(apt-cache showsrc "$pkg" | sed -n 's/^Version: //p' | sort -u -r -V); do
		if apt-get source -qq "$pkg=$v" >/dev/null 2>>apt-source.log; then
			echo "fetch: the candidate of '$pkg' could not be fetched; using $v" >&2
			got=$v
			break
		fi
	done
	if [ -z "$got" ]; then
		cat apt-source.log >&2
		echo "fetch: 'apt-get source $pkg' failed for every version apt knows" >&2
		exit 1
	fi
fi
dir=$(find . -maxdepth 1 -type d -name "$pkg-[0-9]*" | sort | tail -1)
[ -n "$dir" ] || { echo "fetch: no unpacked '$pkg' tree in $dest" >&2; exit 1; }
ln -sfn "${dir#./}" "$pkg"
