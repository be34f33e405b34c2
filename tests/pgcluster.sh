#!/usr/bin/env bash
# tests/pgcluster.sh: a throwaway PostgreSQL cluster for the tests and the
# benchmarks, from Debian's postgresql package, under a folder of the
# caller's, on a free loopback port, owned by an unprivileged user
# (PostgreSQL refuses to run as root: as root the cluster runs as the
# system user codensm-pg, created on first use).  Nothing outside DIR is
# touched and nothing is left running after `stop`.
#
#   tests/pgcluster.sh start DIR   creates and starts it; prints its URL
#                                  (postgresql://codensm@127.0.0.1:PORT/codensm)
#   tests/pgcluster.sh url DIR     prints the URL of a started cluster
#   tests/pgcluster.sh stop DIR    stops it (immediate mode) if it runs
#   tests/pgcluster.sh restart DIR stops it and starts it again (same port)
#
# The database trusts loopback connections: it is for tests only.
set -euo pipefail

die() { echo "pgcluster: $*" >&2; exit 1; }

bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
	[ -n "$d" ] && [ -x "$d/initdb" ] ||
		die "no PostgreSQL server found under /usr/lib/postgresql (install Debian's postgresql: make deps)"
	echo "$d"
}

# Runs a command as the cluster's owner.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		setpriv --reuid=codensm-pg --regid=codensm-pg --init-groups -- "$@"
	else
		"$@"
	fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: tests/pgcluster.sh start|url|stop|restart DIR"

case $cmd in
start)
	bin=$(bindir)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then
		id codensm-pg >/dev/null 2>&1 ||
			useradd --system --no-create-home --home-dir /nonexistent \
				--shell /usr/sbin/nologin codensm-pg
		chown codensm-pg: "$dir"
		# The owner must reach DIR through its parents.
		p=$dir
		while [ "$p" != / ]; do
			p=$(dirname "$p")
			chmod o+x "$p" 2>/dev/null || true
		done
	fi
	port=$(free_port)
	as_owner "$bin/initdb" -D "$dir/data" -U codensm --auth=trust \
		--no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
		die "initdb failed: see $dir/initdb.log"
	as_owner mkdir -p "$dir/sock"
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=on -c max_connections=200" \
		start >/dev/null || die "pg_ctl start failed: see $dir/server.log"
	echo "$port" >"$dir/port"
	as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U codensm codensm ||
		die "createdb failed"
	echo "postgresql://codensm@127.0.0.1:$port/codensm"
	;;
url)
	[ -f "$dir/port" ] || die "no cluster in $dir"
	echo "postgresql://codensm@127.0.0.1:$(cat "$dir/port")/codensm"
	;;
stop)
	[ -d "$dir/data" ] || exit 0
	bin=$(bindir)
	as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	;;
restart)
	bin=$(bindir)
	[ -f "$dir/port" ] || die "no cluster in $dir"
	port=$(cat "$dir/port")
	as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=on -c max_connections=200" \
		start >/dev/null || die "pg_ctl start failed: see $dir/server.log"
	;;
*)
	die "unknown command '$cmd' (start, url, stop, restart)"
	;;
esac
