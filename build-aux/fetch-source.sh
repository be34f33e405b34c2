#!/usr/bin/env bash
# fetch-source.sh: unpack a Debian source package, for the real programs of
# the tests (tests/real) and the benchmarks (bench/).  Test machinery only:
# make, make install and make uninstall never call it.
#
#   build-aux/fetch-source.sh PACKAGE DEST
#
# Leaves the unpacked tree at DEST/PACKAGE (a symlink to PACKAGE-VERSION) and
# does nothing if it is already there.  It needs the network and dpkg-dev,
# not root.  When the machine's apt has no deb-src entries, it reads the
# source indexes into a private apt state, DEST/.apt (deb-src entries made
# from the system's deb entries: same mirrors, same keys), and says so in
# one line on stdout: the machine's apt sources and lists are never changed.
set -euo pipefail
pkg=$1 dest=$2
[ -e "$dest/$pkg/debian/control" ] && exit 0
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

# One at a time across processes (make -j of the benchmarks, test suites).
exec 9>"$dest/.fetch-source.lock"
flock 9
APT=()
if ! apt-get source --print-uris "$pkg" >/dev/null 2>&1; then
	a=$dest/.apt
	APT=(-o "Dir::Etc::SourceList=$a/sources.list" -o "Dir::Etc::SourceParts=$a/sources.list.d"
	     -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache" -o Debug::NoLocking=1)
	if ! compgen -G "$a/lists/*_Sources*" >/dev/null; then
		mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$a/sources.list.d"
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] && sed -n '/^Types:.*\bdeb\b/,/^$/p' "$f"
		done | sed 's/^Types:.*/Types: deb-src/' >"$a/sources.list.d/deb-src.sources"
		# one-line format (older images): "deb URI SUITE COMPONENTS"
		grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
			sed 's/^deb /deb-src /' >"$a/sources.list" || true
		apt-get "${APT[@]}" update -qq 2>"$a/update.log" ||
			{ cat "$a/update.log" >&2; echo "fetch: apt-get update of the deb-src entries in $a failed" >&2; exit 1; }
	fi
	echo "fetch: apt has no deb-src entries: fetching '$pkg' with the source indexes in $a (the machine's apt sources are unchanged)"
fi

cd "$dest"
# The candidate first; if its files are gone from the mirror (a security
# update listed in the index but not served: 404), every other version
# the lists know, newest first.  Any of them is upstream's code.
if ! apt-get "${APT[@]}" source -qq "$pkg" >/dev/null 2>apt-source.log; then
	got=
	for v in $(apt-cache "${APT[@]}" showsrc "$pkg" | sed -n 's/^Version: //p' | sort -u -r -V); do
		if apt-get "${APT[@]}" source -qq "$pkg=$v" >/dev/null 2>>apt-source.log; then
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
