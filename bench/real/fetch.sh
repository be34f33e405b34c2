#!/usr/bin/env bash
# fetch.sh: unpack a Debian source package for the benchmarks.
#
#   bench/real/fetch.sh PACKAGE DEST
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
apt-get source -qq "$pkg" >/dev/null 2>apt-source.log || {
	cat apt-source.log >&2
	echo "fetch: 'apt-get source $pkg' failed" >&2
	exit 1
}
dir=$(find . -maxdepth 1 -type d -name "$pkg-[0-9]*" | sort | tail -1)
[ -n "$dir" ] || { echo "fetch: no unpacked '$pkg' tree in $dest" >&2; exit 1; }
ln -sfn "${dir#./}" "$pkg"
