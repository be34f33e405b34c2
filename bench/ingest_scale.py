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


def ingest(sl, rl, build, store, db, n, seconds, conns, tmp, log, projects=1):
    """One configuration: n servers on db under loadgen for `seconds`;
    with several projects, one loadgen each, the connections split."""
    names = ["bench%d" % k for k in range(projects)]
    keys = [sl.create_project(db, name)["ingest"] for name in names]
    servers = sl.start_servers(tmp, db, n)
    logs = [os.path.join(tmp, "requests-%s-%d-%s.log" % (store.name, n, name)) for name in names]
    loadgen = os.path.join(build, "tests", "load", "loadgen")
    urls = ",".join("http://127.0.0.1:%d/codensm/ingest" % s.port for s in servers)
    try:
        cpu0 = [s.cpu_seconds() for s in servers]
        db0 = store.cpu_seconds() if store.name == "postgresql" else None
        t0 = time.time()
        gens = [subprocess.Popen([loadgen, urls, key, str(seconds), str(conns // projects), path])
                for key, path in zip(keys, logs)]
        rcg = [g.wait(seconds + 120) for g in gens]
        if any(rcg):
            raise RuntimeError("loadgen exited %r" % rcg)
        wall = time.time() - t0
        cpu = [s.cpu_seconds() - c for s, c in zip(servers, cpu0)]
        dbcpu = store.cpu_seconds() - db0 if db0 is not None else None
        alive = all(s.alive() for s in servers)
        rcs = [s.stop() for s in servers]
    finally:
        for s in servers:
            s.close()
    lat, answers, exact, nstored = [], {}, True, 0
    for name, path in zip(names, logs):
        reqs = rl.read_log(path)
        lat += [v[1] / 1000 for v in reqs.values() if v[0] == "200"]
        for v in reqs.values():
            answers[v[0]] = answers.get(v[0], 0) + 1
        acked = {b for b, v in reqs.items() if v[0] == "200"}
        stored = {r[0] for r in store.sql(
            "SELECT batch_id FROM batches b JOIN projects p ON p.id = b.project"
            " WHERE p.name = '%s'" % name)}
        exact = exact and stored == acked
        nstored += len(stored)
    rps = len(lat) / wall
    fig = {"backend": store.name, "servers": n, "projects": projects, "connections": conns,
           "seconds": wall,
           "answered_200": len(lat), "answers": answers, "requests_per_s": rps,
           "rows_per_s": 5 * rps, "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
           "server_cpu_s": cpu, "server_cores": sum(cpu) / wall,
           "db_cpu_s": dbcpu, "db_cores": dbcpu / wall if dbcpu is not None else None,
           "servers_alive": alive, "exit_statuses": rcs,
           "store_exact": exact, "stored_batches": nstored}
    fig["rows_per_server_core_s"] = 5 * len(lat) / sum(cpu) if sum(cpu) else None
    fig["requests_per_db_core_s"] = len(lat) / dbcpu if dbcpu else None
    log("scale: %s x%d, %d project%s: %.0f requests/s, p50 %.1f ms, p99 %.1f ms, servers %.2f"
        " cores%s%s" % (store.name, n, projects, "s" if projects > 1 else "", rps, fig["p50_ms"] or 0, fig["p99_ms"] or 0, fig["server_cores"],
        ", database %.2f cores" % fig["db_cores"] if dbcpu is not None else "",
        "" if fig["store_exact"] else "; THE STORE DIFFERS FROM WHAT WAS ACKNOWLEDGED"))
    return fig


def process_body(t, seq, functions=500, edges=200):
    """A body as one instrumented process posts every 15 s: `functions`
    functions with histograms and `edges` caller->callee pairs."""
    end = time.time()
    fns = [{"name": "svc.m%d.fn%d" % (i % 25, i), "department": "m%d" % (i % 25),
            "value_weight": 1, "calls": 1 + (i + seq) % 50, "errors": (i + seq) % 50 == 0 and 1 or 0,
            "total_ms": 0.5 * (1 + (i + seq) % 50), "self_ms": 0.25, "max_ms": 2.0,
            "hist": [[36, 1 + (i + seq) % 50]]} for i in range(functions)]
    eds = [{"caller": "svc.m%d.fn%d" % (i % 25, i), "callee": "svc.m%d.fn%d" % ((i + 1) % 25, i + 1),
            "calls": 1} for i in range(edges)]
    return json.dumps({"functions": fns, "edges": eds, "_meta": {
        "sdk": "codensm-bench", "service": "svc", "host": "bench", "pid": t,
        "interval": [end - 15, end], "batch_id": "proc-%d-%d" % (t, seq),
        "hist": "log2x2-ns"}}, separators=(",", ":")).encode()


def process_shaped(sl, store, db, n, seconds, tmp, log, threads=8):
    """n servers under `threads` clients posting process-shaped bodies
    (500 functions each) for `seconds`: the CPU one such body costs a
    server and the database, which the capacity model scales up."""
    project = sl.create_project(db, "procs")
    servers = sl.start_servers(tmp, db, n)
    lat, other = [], {}
    lock = threading.Lock()
    try:
        cpu0 = [s.cpu_seconds() for s in servers]
        db0 = store.cpu_seconds()
        t0 = time.time()
        stop = t0 + seconds

        def worker(t):
            cl = sl.Client(timeout=60)
            seq = 0
            while time.time() < stop:
                body = process_body(t, seq)
                a = time.perf_counter()
                got = cl.post(servers[t % n].port, project["ingest"], body)
                ms = 1e3 * (time.perf_counter() - a)
                with lock:
                    if got and got[0] == 200:
                        lat.append(ms)
                    else:
                        k = got[0] if got else None
                        other[k] = other.get(k, 0) + 1
                seq += 1
            cl.close()
        ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        wall = time.time() - t0
        cpu = sum(s.cpu_seconds() - c for s, c in zip(servers, cpu0))
        dbcpu = store.cpu_seconds() - db0
        rcs = [s.stop() for s in servers]
    finally:
        for s in servers:
            s.close()
    ok = len(lat)
    fig = {"backend": store.name, "servers": n, "threads": threads, "seconds": wall,
           "functions_per_body": 500, "answered_200": ok, "other_answers": other,
           "requests_per_s": ok / wall, "rows_per_s": 500 * ok / wall,
           "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
           "server_cpu_s": cpu, "db_cpu_s": dbcpu, "exit_statuses": rcs,
           "server_cpu_ms_per_body": 1e3 * cpu / ok if ok else None,
           "db_cpu_ms_per_body": 1e3 * dbcpu / ok if ok else None}
    log("scale: process-shaped bodies (500 functions), %s x%d: %.1f bodies/s, p50 %.0f ms,"
        " p99 %.0f ms; CPU per body: server %.1f ms, database %.1f ms" % (
            store.name, n, fig["requests_per_s"], fig["p50_ms"] or 0, fig["p99_ms"] or 0,
            fig["server_cpu_ms_per_body"] or 0, fig["db_cpu_ms_per_body"] or 0))
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
        cl = sl.Client(timeout=300)
        path = "/api/projects/dash/functions?window=30d"
        hdr = {"Authorization": "Bearer " + project["dashboard"]}
        # the view must answer on an empty project before it is worth filling
        first = cl.request(srv.port, "GET", path, None, hdr)
        if not first or first[0] != 200:
            raise RuntimeError("functions?window=30d on an empty project answered %r" % (first,))
        took = fill(sl, srv.port, project["ingest"], per_minute, minutes, log)
        lat = []
        first = cl.request(srv.port, "GET", path, None, hdr)
        if not first or first[0] != 200 or first[1]["total"] != per_minute:
            raise RuntimeError("functions?window=30d answered %r, expected %d functions" % (
                (first and (first[0], first[1] and first[1].get("total"))), per_minute))
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
    out = {"ingest": [], "dashboard": [], "process": [], "seconds": seconds, "connections": conns,
           "cores": os.cpu_count(), "loadavg_start": open("/proc/loadavg").read().split()[:3]}
    tmp = tempfile.mkdtemp(prefix="codensm-bench-scale.")
    pg = None
    try:
        why = pg_ok(sl, tmp)
        if why is None:
            try:
                pg = sl.PGStore(tmp)
                out["pg_version"] = subprocess.run(
                    ["psql", "-X", "-A", "-t", "-d", pg.db, "-c", "SHOW server_version"],
                    capture_output=True, text=True).stdout.strip() or None
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
        # the same 1 and 3 servers again with the load spread over 4 projects:
        # a project's batches wait for each other (its quota row), projects do not
        configs = [("sqlite", 1, 1)] + ([("postgresql", n, 1) for n in (1, 2, 3)]
                                        + [("postgresql", n, 4) for n in (1, 3)] if not why else [])
        for k, (backend, n, projects) in enumerate(configs):
            if backend == "sqlite":
                os.makedirs(lite_dir + str(k), exist_ok=True)
                store = sl.SQLiteStore(lite_dir + str(k))
                db = store.db
            else:
                db = pg.fresh("ingest%d_%d" % (n, projects))
                store = _Scoped(pg, db)
            out["ingest"].append(ingest(sl, rl, build, store, db, n, seconds, conns, tmp, log,
                                        projects))
        if not why:
            for n in (1, 2):
                db = pg.fresh("procs%d" % n)
                out["process"].append(process_shaped(sl, _Scoped(pg, db), db, n, seconds,
                                                     tmp, log))
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
                try:
                    out["dashboard"].append(dashboard(sl, store, db, tmp, size, minutes,
                                                      queries, log))
                except (RuntimeError, AssertionError) as e:
                    log("scale: dashboard %s, %d: %s" % (backend, size, e))
                    out["dashboard"].append({"backend": backend, "per_minute": size,
                                             "minutes": minutes, "rows": size * minutes,
                                             "failed": str(e)[:300]})
    finally:
        if pg:
            pg.close()
        shutil.rmtree(tmp, ignore_errors=True)
    out["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
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
    ing = {(f["backend"], f["servers"], f.get("projects", 1)): f for f in R.get("ingest", [])}
    for (b, n, k), f in sorted(ing.items()):
        cfg = "%s, %d server%s%s" % (b, n, "s" if n > 1 else "",
                                     ", %d projects" % k if k > 1 else "")
        rows.append(("scale: ingest, %s, %d connections for %.0f s, requests answered 200 per "
                     "second" % (cfg, f["connections"], f["seconds"]),
                     "(reported; the load rows hold the floor)",
                     "{:,.0f} ({:,.0f} function rows/s)".format(f["requests_per_s"], f["rows_per_s"]),
                     None))
        rows.append(("scale: ingest, %s: latency of those answers" % cfg, "(reported)",
                     "p50 %.1f ms, p99 %.1f ms" % (f["p50_ms"] or 0, f["p99_ms"] or 0), None))
        cores = "servers %.2f cores" % f["server_cores"]
        if f["db_cores"] is not None:
            cores += ", PostgreSQL %.2f cores" % f["db_cores"]
        per = "{:,.0f} function rows per server core-second".format(f["rows_per_server_core_s"] or 0)
        if f["requests_per_db_core_s"]:
            per += ", {:,.0f} requests per database core-second".format(f["requests_per_db_core_s"])
        rows.append(("scale: ingest, %s: CPU" % cfg, "(reported)", "%s; %s" % (cores, per), None))
        ok = f["store_exact"] and f["servers_alive"] and not any(f["exit_statuses"])
        rows.append(("scale: ingest, %s: the store holds exactly the batches answered 200, "
                     "every server alive and exiting 0" % cfg, "exact",
                     "yes (%d)" % f["stored_batches"] if ok else "**no**: %d stored, exits %r" % (
                         f["stored_batches"], f["exit_statuses"]), ok))
    for k in (1, 4):
        p1, p2, p3 = (ing.get(("postgresql", n, k)) for n in (1, 2, 3))
        if not (p1 and (p2 or p3)):
            continue
        r = ["%d servers %.2f" % (n, f["requests_per_s"] / p1["requests_per_s"])
             for n, f in ((2, p2), (3, p3)) if f]
        ok = all(f["requests_per_s"] >= 0.5 * p1["requests_per_s"] for f in (p2, p3) if f)
        # On this machine the load generator, the servers and PostgreSQL
        # share two cores that other work also uses, and one project's
        # batches wait for each other in the database: a second server can
        # only help while one server is what limits, and more processes on
        # two cores cost switching.  So the ratio is reported, and what is
        # held is that more servers never collapse throughput (a lock
        # convoy or a retry storm between servers would).
        rows.append(("scale: ingest on PostgreSQL, %s, more servers / 1 server (one machine: "
                     "clients, servers and database share its cores)" % (
                         "one project" if k == 1 else "%d projects" % k),
                     ">= 0.5 (no collapse; a gain needs cores the database and clients do "
                     "not use, which this machine lacks)", ", ".join(r), ok))
    p1 = ing.get(("postgresql", 1, 1))
    lite = ing.get(("sqlite", 1, 1))
    if lite and p1:
        rows.append(("scale: ingest, PostgreSQL 1 server / SQLite 1 server", "(reported)",
                     "%.2f" % (p1["requests_per_s"] / lite["requests_per_s"]), None))
    for d in R.get("dashboard", []):
        if d.get("failed"):
            rows.append(("scale: dashboard, %s: functions?window=30d over %s function-buckets "
                         "per minute" % (d["backend"], "{:,}".format(d["per_minute"])),
                         "answers", "**failed**: " + d["failed"], False))
            continue
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


# ---- the capacity model (docs/deploy.md) -----------------------------------

INTERVAL = 15          # seconds between one instrumented process's posts
CAP_BEGIN, CAP_END = "<!-- capacity:begin -->", "<!-- capacity:end -->"


def capacity(R, source):
    """docs/deploy.md's capacity section from one run (R = run()'s dict)."""
    L = []
    add = L.append
    add("_Written by `bench/ingest_scale.py` from `%s` (%s)._" % (source, R.get("date", "")))
    add("")
    add("**Measured** on the machine the tests run on: a shared virtual machine with %d "
        "cores, busy with other work (load average %s at the start, %s at the end), the "
        "load generator, the servers and the database (%s, `fsync=on`) all on those same "
        "cores, every client on loopback. Each run lasted about %d s." % (
            R.get("cores", 2), "/".join(R.get("loadavg_start", [])),
            "/".join(R.get("loadavg_end", [])), "PostgreSQL " + R["pg_version"] if R.get("pg_version") else "Debian's PostgreSQL",
            R.get("seconds", 15)))
    add("")
    add("Small bodies (the load generator's: 5 functions, 4 edges, %d connections):" %
        R.get("connections", 0))
    add("")
    add("| store | servers | projects | requests/s | function rows/s | p50 / p99 ms |"
        " server cores used | database cores used | rows/s per server core |"
        " requests/s per database core |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for f in R.get("ingest", []):
        add("| %s | %d | %d | %s | %s | %.1f / %.1f | %.2f | %s | %s | %s |" % (
            "SQLite" if f["backend"] == "sqlite" else "PostgreSQL", f["servers"],
            f.get("projects", 1),
            "{:,.0f}".format(f["requests_per_s"]), "{:,.0f}".format(f["rows_per_s"]),
            f["p50_ms"] or 0, f["p99_ms"] or 0, f["server_cores"],
            "%.2f" % f["db_cores"] if f["db_cores"] is not None else "-",
            "{:,.0f}".format(f["rows_per_server_core_s"] or 0),
            "{:,.0f}".format(f["requests_per_db_core_s"]) if f["requests_per_db_core_s"] else "-"))
    procs = R.get("process", [])
    if procs:
        add("")
        add("Process-shaped bodies (what one instrumented process posts every %d s: 500 "
            "functions with histograms, 200 edges), PostgreSQL, %d client threads:" % (
                INTERVAL, procs[0]["threads"]))
        add("")
        add("| servers | bodies/s | function rows/s | p50 / p99 ms | server CPU per body |"
            " database CPU per body |")
        add("|---|---|---|---|---|---|")
        for f in procs:
            add("| %d | %.1f | %s | %.0f / %.0f | %.1f ms | %.1f ms |" % (
                f["servers"], f["requests_per_s"], "{:,.0f}".format(f["rows_per_s"]),
                f["p50_ms"] or 0, f["p99_ms"] or 0, f["server_cpu_ms_per_body"] or 0,
                f["db_cpu_ms_per_body"] or 0))
    dash = R.get("dashboard", [])
    if dash:
        add("")
        add("The heaviest dashboard request, `functions?window=30d`, on one server, over "
            "data written through ingest (N functions each reporting every minute, for %d "
            "minutes):" % dash[0]["minutes"])
        add("")
        add("| store | function-buckets per minute | rows | p50 | p99 |")
        add("|---|---|---|---|---|")
        for d in dash:
            if d.get("failed"):
                add("| %s | %s | %s | failed: %s | |" % (
                    "SQLite" if d["backend"] == "sqlite" else "PostgreSQL",
                    "{:,}".format(d["per_minute"]), "{:,}".format(d["rows"]), d["failed"]))
                continue
            add("| %s | %s | %s | %.0f ms | %.0f ms |" % (
                "SQLite" if d["backend"] == "sqlite" else "PostgreSQL",
                "{:,}".format(d["per_minute"]), "{:,}".format(d["rows"]),
                d["p50_ms"], d["p99_ms"]))
    best = min((f for f in procs if f.get("db_cpu_ms_per_body")),
               key=lambda f: f["db_cpu_ms_per_body"], default=None)
    add("")
    if not best:
        add("**Projected**: not available: this run had no PostgreSQL figures.")
        return "\n".join(L)
    db_ms = best["db_cpu_ms_per_body"]
    srv_ms = best["server_cpu_ms_per_body"]
    per_db_core = INTERVAL * 1000 / db_ms
    per_srv_core = INTERVAL * 1000 / srv_ms
    add("**Projected** from those measurements (arithmetic, not measured): one "
        "instrumented process posts one 500-function body every %d s. A body cost "
        "PostgreSQL %.1f ms of CPU and a server %.1f ms, so" % (INTERVAL, db_ms, srv_ms))
    add("")
    add("- one database core serves about %s processes (%d s / %.1f ms), and one "
        "server core about %s;" % ("{:,.0f}".format(per_db_core), INTERVAL, db_ms,
                                   "{:,.0f}".format(per_srv_core)))
    for cores in (4, 8, 16):
        n = cores * per_db_core * 0.6
        sc = max(1, round(n / per_srv_core / 0.6))
        add("- a %d-core database kept at 60%% CPU: about %s processes, %s bodies and %s "
            "function rows a second, with about %d server core%s in front of it;" % (
                cores, "{:,.0f}".format(n), "{:,.0f}".format(n / INTERVAL),
                "{:,.0f}".format(500 * n / INTERVAL), sc, "s" if sc > 1 else ""))
    add("- its disk must take one commit per body (group commit merges them) and the "
        "rows' WAL; the dashboard's reads come on top (below);")
    one = [f for f in procs if f["servers"] == 1]
    if one:
        b = one[0]["requests_per_s"]
        add("- **but one project's batches queue on shared rows**: each updates the "
            "project's usage row (the quota) just before it commits, and the per-minute rows "
            "of the functions it shares with other batches, and the database applies "
            "transactions touching the same rows one after another (docs/api.md, "
            "\"Exactness with several servers\"). All process-shaped bodies above went to "
            "one project with the same 500 functions in the same minutes, as many processes "
            "of one service would: %.1f a second, so such a project holds about %s "
            "processes (%.1f x %d s) on this machine, whatever the number of servers. How "
            "much of that ceiling is the shared rows and how much this machine's two busy "
            "cores, this run does not separate; more projects multiply it (the 4-project "
            "rows)." % (b, "{:,.0f}".format(b * INTERVAL), b, INTERVAL))
    add("")
    add("The CPU per body was measured on a busy shared VM (neighbours' load, CPU steal, "
        "cold caches) and is likely pessimistic for a dedicated database host.")
    add("")
    ing = {(f["backend"], f["servers"], f.get("projects", 1)): f for f in R.get("ingest", [])}
    ratios = []
    for k in (1, 4):
        one = ing.get(("postgresql", 1, k))
        more = [(n, ing[("postgresql", n, k)]) for n in (2, 3) if ("postgresql", n, k) in ing]
        if one and more:
            ratios.append("%s with %s" % (" and ".join(
                "%.2f (%d servers)" % (f["requests_per_s"] / one["requests_per_s"], n)
                for n, f in more), "one project" if k == 1 else "%d projects" % k))
    if ratios:
        top = max(f["db_cores"] or 0 for f in R.get("ingest", []))
        add("These hold while the database's CPU is what limits. In this run, requests/s "
            "relative to one server's were %s, the database never using more than %.2f "
            "of the machine's %d cores: here the clients, the servers and the database share "
            "two busy cores, and one project's batches queue on its row, so the ratios are "
            "noise around what one machine allows, not the ceiling of the design. With the "
            "database on cores of its own, servers add throughput until those cores are busy "
            "(the projection above)." % (" and ".join(ratios), top, R.get("cores", 2)))
    return "\n".join(L)


def write_capacity(path, text):
    with open(path) as f:
        doc = f.read()
    a, b = doc.find(CAP_BEGIN), doc.find(CAP_END)
    if a < 0 or b < a:
        raise SystemExit("ingest_scale.py: '%s' has no %s ... %s markers" % (path, CAP_BEGIN, CAP_END))
    with open(path, "w") as f:
        f.write(doc[:a] + CAP_BEGIN + "\n" + text + "\n" + doc[b:])


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=48)
    ap.add_argument("--minutes", type=int, default=5)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--report", metavar="JSON",
                    help="a saved run (this script's or bench/run.py's): print the capacity"
                    " model and run nothing")
    ap.add_argument("--doc", nargs="?", const=os.path.join(REPO, "docs", "deploy.md"),
                    metavar="MD", help="write the capacity model into this doc's markers"
                    " (default docs/deploy.md)")
    a = ap.parse_args()
    if a.report:
        with open(a.report) as f:
            R = json.load(f)
        R = R.get("scale", R)
        text = capacity(R, os.path.relpath(a.report, REPO))
        print(text)
        if a.doc:
            write_capacity(a.doc, text)
        sys.exit(0)
    R = run(os.path.abspath(a.build), a.seconds, a.connections, a.minutes,
            tuple(int(x) for x in a.sizes.split(",")),
            log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(R, indent=1))
    for row in checks(R):
        print(" | ".join(str(x) for x in row), file=sys.stderr)
