"""ingest_scale.py: codensm-server scaled out, measured (`make bench`'s
`scale` part; bench/run.py --only scale calls run()).

1. Ingest: the same load generator (tests/load/loadgen, runtime-shaped
   bodies of 5 functions and 4 edges, every batch id distinct) against
   one server on the SQLite default, then 1, 2 and 3 servers on one
   PostgreSQL, in one run: requests answered 200 per second, their p50/p99
   latency, each server process's CPU (utime+stime from /proc) and the
   PostgreSQL processes' CPU, from which rows/s per server core and
   requests/s per database core.  Afterwards the store must hold exactly
   the acknowledged batches (their count, read back with SQL).
2. The heaviest dashboard query, GET functions?window=30d (every function's
   sums over the window, its last 15 minutes and 30 days, and the
   histograms of the page shown), on a store holding N function-buckets per
   minute for MINUTES minutes, N = 1,000, 10,000 and 100,000, written
   through ingest (bodies of 2,000 functions, one bucket each, the
   interval's end placing each body in its minute): p50/p99 over repeated
   requests, on each backend.

Everything runs on this machine: clients, servers and the database share
its cores, which bounds what scaling out can show here (the report says
so).  PostgreSQL comes from tests/pgcluster.sh (a throwaway cluster).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "scale"))
sys.path.insert(0, os.path.join(REPO, "tests", "load"))


def _libs(build):
    os.environ["CODENSM_BUILD"] = build
    import scalelib
    import run_load
    return scalelib, run_load


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else None


def ingest(sl, rl, build, store, db, n, seconds, conns, tmp, log):
    """One configuration: n servers on db under loadgen for `seconds`."""
    project = sl.create_project(db, "bench")
    servers = sl.start_servers(tmp, db, n)
    logpath = os.path.join(tmp, "requests-%s-%d.log" % (store.name, n))
    loadgen = os.path.join(build, "tests", "load", "loadgen")
    urls = ",".join("http://127.0.0.1:%d/codensm/ingest" % s.port for s in servers)
    try:
        cpu0 = [s.cpu_seconds() for s in servers]
        db0 = store.cpu_seconds() if store.name == "postgresql" else None
        t0 = time.time()
        subprocess.run([loadgen, urls, project["ingest"], str(seconds), str(conns), logpath],
                       check=True, timeout=seconds + 120)
        wall = time.time() - t0
        cpu = [s.cpu_seconds() - c for s, c in zip(servers, cpu0)]
        dbcpu = store.cpu_seconds() - db0 if db0 is not None else None
        alive = all(s.alive() for s in servers)
        rcs = [s.stop() for s in servers]
    finally:
        for s in servers:
            s.close()
    reqs = rl.read_log(logpath)
    lat = [v[1] / 1000 for v in reqs.values() if v[0] == "200"]
    answers = {}
    for v in reqs.values():
        answers[v[0]] = answers.get(v[0], 0) + 1
    acked = {b for b, v in reqs.items() if v[0] == "200"}
    stored = {r[0] for r in store.sql(
        "SELECT batch_id FROM batches b JOIN projects p ON p.id = b.project WHERE p.name = 'bench'")}
    rps = len(lat) / wall
    fig = {"backend": store.name, "servers": n, "connections": conns, "seconds": wall,
           "answered_200": len(lat), "answers": answers, "requests_per_s": rps,
           "rows_per_s": 5 * rps, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
           "server_cpu_s": cpu, "server_cores": sum(cpu) / wall,
           "db_cpu_s": dbcpu, "db_cores": dbcpu / wall if dbcpu is not None else None,
           "servers_alive": alive, "exit_statuses": rcs,
           "store_exact": stored == acked, "stored_batches": len(stored)}
    fig["rows_per_server_core_s"] = 5 * len(lat) / sum(cpu) if sum(cpu) else None
    fig["requests_per_db_core_s"] = len(lat) / dbcpu if dbcpu else None
    log("scale: %s x%d: %.0f requests/s, p50 %.1f ms, p99 %.1f ms, servers %.2f cores%s%s" % (
        store.name, n, rps, fig["p50_ms"] or 0, fig["p99_ms"] or 0, fig["server_cores"],
        ", database %.2f cores" % fig["db_cores"] if dbcpu is not None else "",
        "" if fig["store_exact"] else "; THE STORE DIFFERS FROM WHAT WAS ACKNOWLEDGED"))
    return fig


def fill(sl, port, key, per_minute, minutes, log):
    """per_minute functions x minutes buckets through ingest, 2,000
    functions a body, 4 client threads; returns seconds taken."""
    now = time.time()
    jobs = []
    for m in range(minutes):
        end = now - 60 * (minutes - m) - 30  # inside minute m, before now
        for first in range(0, per_minute, 2000):
            jobs.append((m, first, end))
    lock = threading.Lock()
    bad = []

    def worker():
        cl = sl.Client(timeout=300)
        while True:
            with lock:
                if not jobs:
                    break
                m, first, end = jobs.pop()
            fns = [{"name": "dash.d%d.fn%d" % (i % 20, i), "department": "d%d" % (i % 20),
                    "value_weight": 1, "calls": 3, "errors": i % 3 == 0 and 1 or 0,
                    "total_ms": 0.75, "hist": [[38, 2], [40, 1]]}
                   for i in range(first, min(first + 2000, per_minute))]
            body = json.dumps({"functions": fns, "_meta": {
                "interval": [end - 15, end], "batch_id": "fill-%d-%d" % (m, first)}},
                separators=(",", ":")).encode()
            got = cl.post(port, key, body)
            if not got or got[0] != 200:
                with lock:
                    bad.append(got)
        cl.close()
    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if bad:
        raise RuntimeError("filling the dashboard's store: %d bodies refused, e.g. %r"
                           % (len(bad), bad[:3]))
    return time.time() - t0


def dashboard(sl, store, db, tmp, per_minute, minutes, queries, log):
    project = sl.create_project(db, "dash")
    srv = sl.start_servers(tmp, db, 1)[0]
    try:
        took = fill(sl, srv.port, project["ingest"], per_minute, minutes, log)
        cl = sl.Client(timeout=300)
        path = "/api/projects/dash/functions?window=30d"
        hdr = {"Authorization": "Bearer " + project["dashboard"]}
        lat = []
        first = cl.request(srv.port, "GET", path, None, hdr)
        if not first or first[0] != 200 or first[1]["total"] != per_minute:
            raise RuntimeError("functions?window=30d answered %r" % (first and (
                first[0], first[1] and first[1].get("total"))))
        for _ in range(queries):
            t0 = time.perf_counter()
            got = cl.request(srv.port, "GET", path, None, hdr)
            lat.append(1e3 * (time.perf_counter() - t0))
            if not got or got[0] != 200:
                raise RuntimeError("functions?window=30d answered %r" % (got and got[0]))
        cl.close()
        rc = srv.stop()
    finally:
        srv.close()
    fig = {"backend": store.name, "per_minute": per_minute, "minutes": minutes,
           "rows": per_minute * minutes, "fill_s": took, "queries": queries,
           "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "exit_status": rc}
    log("scale: dashboard %s, %d function-buckets/min x %d min (filled in %.0f s):"
        " functions?window=30d p50 %.1f ms, p99 %.1f ms" % (
            store.name, per_minute, minutes, took, fig["p50_ms"], fig["p99_ms"]))
    return fig


def pg_ok(sl, tmp):
    """None when the server runs on PostgreSQL here, else why not."""
    if not sl.have_postgres():
        return "no PostgreSQL server installed (make deps)"
    return None


def run(build, seconds=15, conns=48, minutes=5, sizes=(1000, 10000, 100000), queries=20,
        log=print):
    sl, rl = _libs(build)
    out = {"ingest": [], "dashboard": [], "seconds": seconds, "connections": conns,
           "cores": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    tmp = tempfile.mkdtemp(prefix="codensm-bench-scale.")
    pg = None
    try:
        why = pg_ok(sl, tmp)
        if why is None:
            try:
                pg = sl.PGStore(tmp)
                rc, _, err = sl.cli(pg.db, "project", "list")
                if rc != 0:
                    why = err.strip()
            except AssertionError as e:
                why = str(e)
        out["postgresql_unavailable"] = why
        if why:
            log("scale: PostgreSQL rows left out: " + why)
        lite_dir = os.path.join(tmp, "lite")
        # ingest: SQLite x1, then PG x1, x2, x3, each on a store of its own
        configs = [("sqlite", 1)] + ([("postgresql", n) for n in (1, 2, 3)] if not why else [])
        for k, (backend, n) in enumerate(configs):
            if backend == "sqlite":
                os.makedirs(lite_dir + str(k), exist_ok=True)
                store = sl.SQLiteStore(lite_dir + str(k))
                db = store.db
            else:
                store, db = pg, pg.fresh("ingest%d" % n)
                store = _Scoped(pg, db)
            out["ingest"].append(ingest(sl, rl, build, store, db, n, seconds, conns, tmp, log))
        for backend in ["sqlite"] + (["postgresql"] if not why else []):
            for size in sizes:
                if backend == "sqlite":
                    d = os.path.join(tmp, "dash%d" % size)
                    os.makedirs(d, exist_ok=True)
                    store = sl.SQLiteStore(d)
                    db = store.db
                else:
                    db = pg.fresh("dash%d" % size)
                    store = _Scoped(pg, db)
                out["dashboard"].append(dashboard(sl, store, db, tmp, size, minutes, queries, log))
    finally:
        if pg:
            pg.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    return out


class _Scoped:
    """The cluster's store seen through one of its databases (db)."""
    name = "postgresql"

    def __init__(self, pg, db):
        self.pg, self.db = pg, db

    def sql(self, query):
        saved = self.pg.db
        self.pg.db = self.db
        try:
            return self.pg.sql(query)
        finally:
            self.pg.db = saved

    def cpu_seconds(self):
        return self.pg.cpu_seconds()


# ---- targets ---------------------------------------------------------------

def checks(R):
    """(what, target, measured, met or None) rows for bench/run.py's table."""
    rows = []
    ing = {(f["backend"], f["servers"]): f for f in R.get("ingest", [])}
    for (b, n), f in sorted(ing.items()):
        rows.append(("scale: ingest, %s, %d server%s, %d connections for %.0f s, requests "
                     "answered 200 per second" % (b, n, "s" if n > 1 else "", f["connections"],
                                                  f["seconds"]),
                     "(reported; the load rows hold the floor)",
                     "{:,.0f} ({:,.0f} function rows/s)".format(f["requests_per_s"], f["rows_per_s"]),
                     None))
        rows.append(("scale: ingest, %s, %d server%s: latency of those answers" % (
            b, n, "s" if n > 1 else ""), "(reported)",
            "p50 %.1f ms, p99 %.1f ms" % (f["p50_ms"] or 0, f["p99_ms"] or 0), None))
        cores = "servers %.2f cores" % f["server_cores"]
        if f["db_cores"] is not None:
            cores += ", PostgreSQL %.2f cores" % f["db_cores"]
        per = "{:,.0f} function rows per server core-second".format(f["rows_per_server_core_s"] or 0)
        if f["requests_per_db_core_s"]:
            per += ", {:,.0f} requests per database core-second".format(f["requests_per_db_core_s"])
        rows.append(("scale: ingest, %s, %d server%s: CPU" % (b, n, "s" if n > 1 else ""),
                     "(reported)", "%s; %s" % (cores, per), None))
        rows.append(("scale: ingest, %s, %d server%s: the store holds exactly the batches "
                     "answered 200, every server alive and exiting 0" % (b, n, "s" if n > 1 else ""),
                     "exact", "yes (%d)" % f["stored_batches"] if f["store_exact"] and f["servers_alive"]
                     and not any(f["exit_statuses"]) else "**no**: %d stored, exits %r" % (
                         f["stored_batches"], f["exit_statuses"]),
                     f["store_exact"] and f["servers_alive"] and not any(f["exit_statuses"])))
    p1, p2, p3 = (ing.get(("postgresql", n)) for n in (1, 2, 3))
    if p1 and p2:
        r2 = p2["requests_per_s"] / p1["requests_per_s"]
        r3 = p3["requests_per_s"] / p1["requests_per_s"] if p3 else None
        # On this machine the clients, the servers and PostgreSQL share the
        # same cores: a second server can only help while one server, not
        # the database or the machine, is what limits.  The honest check
        # here is that adding servers costs nothing; the ratio is reported.
        rows.append(("scale: ingest on PostgreSQL, 2 and 3 servers / 1 (one machine: clients, "
                     "servers and database share its cores)", ">= 0.9 (adding servers costs "
                     "nothing; >= 1.5 needs cores the database does not use)",
                     "%.2f and %s" % (r2, "%.2f" % r3 if r3 else "-"),
                     r2 >= 0.9 and (r3 is None or r3 >= 0.9)))
    lite = ing.get(("sqlite", 1))
    if lite and p1:
        rows.append(("scale: ingest, PostgreSQL 1 server / SQLite 1 server", "(reported)",
                     "%.2f" % (p1["requests_per_s"] / lite["requests_per_s"]), None))
    for d in R.get("dashboard", []):
        rows.append(("scale: dashboard, %s: functions?window=30d over %s function-buckets per "
                     "minute x %d minutes (%s rows, written through ingest)" % (
                         d["backend"], "{:,}".format(d["per_minute"]), d["minutes"],
                         "{:,}".format(d["rows"])),
                     "(reported)", "p50 %.1f ms, p99 %.1f ms (%d requests)" % (
                         d["p50_ms"], d["p99_ms"], d["queries"]), None))
    if R.get("postgresql_unavailable"):
        rows.append(("scale: PostgreSQL rows", "run", "**not run**: " + R["postgresql_unavailable"],
                     False))
    return rows


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=48)
    ap.add_argument("--minutes", type=int, default=5)
    ap.add_argument("--sizes", default="1000,10000,100000")
    a = ap.parse_args()
    R = run(os.path.abspath(a.build), a.seconds, a.connections, a.minutes,
            tuple(int(x) for x in a.sizes.split(",")),
            log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(R, indent=1))
    for row in checks(R):
        print(row)
