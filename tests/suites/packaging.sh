#!/usr/bin/env bash
# tests/suites/packaging.sh: the build a packager runs.  A fresh copy of the
# tree (every file git knows or would add, as the working tree has it) is
# built by an unprivileged user with no network: make, make install into a
# prefix, a program built from the installed pkg-config file sends exact
# counts to the installed server, the man pages render without warnings,
# the systemd unit verifies, make uninstall leaves no file behind, and no
# command of make, make install or make uninstall runs apt, sudo or
# fetch-source.  Prints TAP.
#
# As root (the test machines): the user is codensm-pkg (created when
# missing) and the build runs in a network namespace of its own, loopback
# only.  As another user: that user, with the network as it is.
set -u
cd "$(dirname "$0")/../.."
n=0
tap() { n=$((n + 1)); echo "$1 $n - $2"; }
# check DESCRIPTION EXPECTED GOT: ok when equal, else both, line by line.
check() {
	if [ "$2" = "$3" ]; then
		tap ok "$1"
	else
		tap "not ok" "$1"
		diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^</#   expected:/; s/^>/#   got:     /' | grep '^#' | head -40
	fi
}

# ---- inside: the unprivileged, offline part --------------------------------
if [ "${1:-}" = --inside ]; then
	T=$2 src=$2/src P=$2/prefix
	cd "$src" || exit 1
	export HOME=$T/home MAKEFLAGS=
	mkdir -p "$HOME"

	# The commands make would run, read before anything is built.
	cmds=$(make -n all install uninstall PREFIX="$P" 2>&1)
	check "make -n all install uninstall runs no apt, sudo, dpkg or fetch-source" "" \
		"$(grep -nE '(^|[^a-z-])(apt-get|apt|sudo|dpkg|dpkg-query|fetch-source(\.sh)?)([^a-z-]|$)' <<<"$cmds")"

	nice make -j2 >"$T/make.log" 2>&1
	rc=$?
	check "make exits 0" 0 $rc
	[ $rc = 0 ] || tail -20 "$T/make.log" | sed 's/^/#   /'

	make install PREFIX="$P" >"$T/install.log" 2>&1
	check "make install PREFIX=... exits 0" 0 $?
	expected=$( {
		printf '%s\n' bin/codensm bin/codensm-analyze bin/codensm-server include/codensm.h \
			lib/libcodensm-rt.a lib/libcodensm-rt.so lib/libcodensm-rt.so.0 \
			lib/libcodensm-rt.so.0.1.0 lib/pkgconfig/codensm-rt.pc \
			lib/systemd/system/codensm-server.service share/man/man1/codensm-server.1 \
			share/man/man1/codensm.1 share/man/man3/libcodensm-rt.3
		sed 's|^tools/server/web/|share/codensm/web/|' "$T/web-files"
	} | LC_ALL=C sort)
	check "make install puts exactly the runtime, header, .pc, tools, dashboard, man pages and unit in PREFIX" \
		"$expected" "$(cd "$P" && find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort)"
	check "the shared runtime's links: libcodensm-rt.so and .so.0 -> libcodensm-rt.so.0.1.0" \
		"libcodensm-rt.so.0.1.0 libcodensm-rt.so.0.1.0" \
		"$(readlink "$P/lib/libcodensm-rt.so") $(readlink "$P/lib/libcodensm-rt.so.0")"

	# A program built the way the man page says, against the installed tree.
	mkdir -p "$T/prog" && cd "$T/prog" || exit 1
	printf '%s\n' 'static int add(int a) { return a + 1; }' \
		'int main(void) { int s = 0; for (int i = 0; i < 5; i++) s += add(i); return s != 15; }' >t.c
	cc -g -finstrument-functions t.c -o t -Wl,-rpath,"$P/lib" \
		$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs codensm-rt) 2>"$T/cc.log"
	check "a program compiles and links with pkg-config --cflags --libs codensm-rt of the installed tree" 0 $?
	check "it loads the installed runtime" "$P/lib/libcodensm-rt.so.0" \
		"$(ldd ./t | sed -n 's/^\tlibcodensm-rt.so.0 => \(.*\) (0x.*/\1/p')"

	db=$T/codensm.db
	keys=$("$P/bin/codensm-server" project create pkg --db "$db" 2>&1)
	ingest=$(sed -n 's/^ingest key: //p' <<<"$keys") view=$(sed -n 's/^dashboard key: //p' <<<"$keys")
	check "the installed server creates a project" "cnsm_ cnsmv_" "${ingest:0:5} ${view:0:6}"
	"$P/bin/codensm-server" --db "$db" --listen 127.0.0.1:0 >"$T/server.out" 2>"$T/server.err" &
	srv=$!
	for _ in $(seq 100); do grep -q '^listening on' "$T/server.out" 2>/dev/null && break; sleep 0.05; done
	url=$(sed -n 's/^listening on //p' "$T/server.out")
	check "the installed server listens and finds its installed dashboard" \
		"codensm-server: database '$db', dashboard files '$P/share/codensm/web'" \
		"$(head -1 "$T/server.err")"
	out=$(CODENSM_API_KEY=$ingest CODENSM_ENDPOINT=$url/codensm/ingest CODENSM_LOG=debug \
		CODENSM_SPOOL_DIR=$T/spool ./t 2>&1)
	check "the program exits 0" 0 $?
	check "it sent through the system's libcurl, loaded at its send" "$(readlink -f "$T/syscurl")" \
		"$(sed -n 's/^codensm: libcurl: //p' <<<"$out" | xargs -r readlink -f)"
	report=$("$P/bin/codensm" report --server "$url" --project pkg --key "$view" --window 1h 2>&1)
	check "the installed codensm report shows exactly its calls: t.add 5, t.main 1" "t.add 5
t.main 1" "$(awk '$1 ~ /^t\./ { print $1, $3 }' <<<"$report" | LC_ALL=C sort)"
	kill "$srv" && wait "$srv" 2>/dev/null
	cd "$T" || exit 1

	for page in man1/codensm.1 man1/codensm-server.1 man3/libcodensm-rt.3; do
		check "$page renders with groff -man -ww without a warning" "" \
			"$(LC_ALL=C.UTF-8 groff -man -ww -z "$P/share/man/$page" 2>&1)"
		name=${page#*/}
		check "man finds ${name%.*}(${name##*.}) in PREFIX/share/man" "$P/share/man/$page" \
			"$(MANPATH=$P/share/man man -w "${name##*.}" "${name%.*}" 2>&1)"
	done

	unit=$P/lib/systemd/system/codensm-server.service
	check "the unit runs the installed server" "ExecStart=$P/bin/codensm-server" "$(grep '^ExecStart=' "$unit")"
	check "the unit runs it as a dynamic user with a state folder" "DynamicUser=yes
StateDirectory=codensm" "$(grep -E '^(DynamicUser|StateDirectory)=' "$unit")"
	if command -v systemd-analyze >/dev/null; then
		check "systemd-analyze verify accepts the unit, its man page included, without a word" "" \
			"$(MANPATH=$P/share/man systemd-analyze verify "$unit" 2>&1)"
	else
		tap ok "systemd-analyze verify accepts the unit # SKIP systemd-analyze is not installed"
	fi

	make -C "$src" uninstall PREFIX="$P" >"$T/uninstall.log" 2>&1
	check "make uninstall exits 0" 0 $?
	check "make uninstall leaves no file in PREFIX" "" \
		"$(cd "$P" && find . \( -type f -o -type l \) | sed 's|^\./||' | LC_ALL=C sort)"
	echo "$n" >"$T/inside.count"
	exit 0
fi

# ---- outside: the copy, the user, the namespace ------------------------------
T=$(mktemp -d /tmp/codensm-packaging.XXXXXX)
chmod 755 "$T"
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
apt_state() { find /etc/apt -type f -exec md5sum {} + 2>/dev/null | LC_ALL=C sort; }
apt_before=$(apt_state)

mkdir "$T/src"
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$T/src"
git ls-files --cached --others --exclude-standard tools/server/web | LC_ALL=C sort >"$T/web-files"
# The libcurl the runtime must load: the one ldconfig names for libcurl.so.4.
ln -s "$(ldconfig -p | sed -n 's/^\tlibcurl.so.4 (.*) => //p' | head -1)" "$T/syscurl"
check "a fresh copy of the tree has the Makefile and no build/" "Makefile" \
	"$(ls "$T/src" | grep -xE 'Makefile|build')"

# The man pages name every option and variable the code reads (in roff,
# "\-" is a hyphen).
missing() { # PAGE WORD...: the words PAGE never mentions
	local text w
	text=$(sed 's/\\-/-/g' "$1")
	shift
	for w in "$@"; do grep -qF -- "$w" <<<"$text" || echo "$w"; done
}
check "codensm-server(1) names every option and variable of tools/server" "" \
	"$(missing docs/man/codensm-server.1 $(grep -ohE '"--[a-z-]+"|getenv\("CODENSM_[A-Z_]+"\)' tools/server/*.c |
		grep -oE -- '--[a-z-]+|CODENSM_[A-Z_]+' | LC_ALL=C sort -u))"
check "codensm(1) names every command, option and variable of tools/cli" "" \
	"$(missing docs/man/codensm.1 doctor report probe version $(grep -ohE '"--[a-z-]+"|getenv\("CODENSM_[A-Z_]+"\)' tools/cli/*.c |
		grep -oE -- '--[a-z-]+|CODENSM_[A-Z_]+' | LC_ALL=C sort -u))"
check "libcodensm-rt(3) names every CODENSM_ variable of runtime/src/config.c and every function of codensm.h" "" \
	"$(missing docs/man/libcodensm-rt.3 $(grep -ohE '"CODENSM_[A-Z_]+"' runtime/src/config.c | tr -d '"' | LC_ALL=C sort -u) \
		$(grep -oE '\bcodensm_[a-z_]+\(' runtime/include/codensm.h | grep -v '^codensm__' | LC_ALL=C sort -u))"

me=$T/src/tests/suites/packaging.sh # the copy's own, readable by the user
if [ "$(id -u)" = 0 ]; then
	id codensm-pkg >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin codensm-pkg
	chown -R codensm-pkg: "$T"
	# Loopback only; then the user, with no capability left.
	unshare --net -- sh -c 'ip link set lo up 2>/dev/null || ifconfig lo up 2>/dev/null
		exec setpriv --reuid=codensm-pkg --regid=codensm-pkg --init-groups --inh-caps=-all \
			--reset-env -- bash "$0" --inside "$1"' "$me" "$T" >"$T/inside.tap"
	who=codensm-pkg
else
	bash "$me" --inside "$T" >"$T/inside.tap"
	who=$(id -un)
fi
# Renumber the inside lines after the outside ones.
while IFS= read -r line; do
	case $line in
	"ok "* | "not ok "*)
		n=$((n + 1))
		echo "$line" | sed -E "s/^(not ok|ok) [0-9]+/\1 $n/"
		;;
	*) echo "$line" ;;
	esac
done <"$T/inside.tap"
if [ ! -s "$T/inside.count" ]; then
	tap "not ok" "the build as $who ran to its end"
	tail -20 "$T/make.log" 2>/dev/null | sed 's/^/#   /'
fi
if [ "$(id -u)" = 0 ]; then
	check "the network was out of reach for the build: no route to a public address" "unreachable" \
		"$(unshare --net -- sh -c 'ip link set lo up; ip route get 1.1.1.1 >/dev/null 2>&1 && echo reachable || echo unreachable')"
fi
check "/etc/apt is unchanged" "$apt_before" "$(apt_state)"
echo "1..$n"
