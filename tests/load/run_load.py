"""run_load.py: codensm-server under load on loopback, twice, and the store
compared with exactly what the clients were told.

1. steady: CONNECTIONS clients post for SECONDS; afterwards every batch
   answered 200 is in the store, no other batch is, and the stored sums of
   calls, errors and total_ms per function equal the sums of the
   acknowledged payloads, to the unit.
2. kill -9: the same, with the server killed -9 a third of the way in and
   restarted on the same file and port a second later.  Every batch
   answered 200 is in the store; a batch answered with an error is not;
   the ones in flight at the kill (no answer) may be either, and the sums
   equal the acknowledged batches plus exactly the in-flight ones present.

Prints TAP: what it asserts is the data's integrity.  How fast the server
was (requests/s held, p50/p99 latency) depends on the machine and on what
else runs on it, so it is measured by `make bench` (bench/run.py, which
calls run() here) against a stated floor, not asserted by `make test`.
usage: python3 tests/load/run_load.py [SECONDS] [CONNECTIONS]
"""
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from serverlib import BIN, ROOT, BUILD, cli  # noqa: E402

LOADGEN = os.path.join(ROOT, BUILD, "tests", "load", "loadgen") if not os.path.isabs(BUILD) \
    else os.path.join(BUILD, "tests", "load", "loadgen")
n = 0


def tap(ok, what, diag=None):
    global n
    n += 1
    print(f"{'ok' if ok else 'not ok'} {n} - {what}", flush=True)
    if not ok and diag:
        for line in str(diag).splitlines()[:20]:
            print("#   " + line, flush=True)
    return ok


def note(line):
    print("# " + line, flush=True)


def start(db, tmp, listen="127.0.0.1:0"):
    log = open(os.path.join(tmp, "server.log"), "ab")
    p = subprocess.Popen([BIN, "--listen", listen, "--db", db], stdout=subprocess.PIPE, stderr=log)
    line = p.stdout.readline().decode()
    if not line.startswith("listening on http://127.0.0.1:"):
        p.kill()
        raise AssertionError(f"codensm-server did not start: {line!r}")
    return p, int(line.rsplit(":", 1)[1])


def read_log(path):
    """{batch: (status, latency_us, [(name, calls, errors, total)])}"""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            fns = []
            for item in parts[3:]:
                name, calls, errors, total = item.rsplit(":", 3)
                fns.append((name, int(calls), int(errors), float(total)))
            out[parts[0]] = (parts[1], int(parts[2]), fns)
    return out


def stored(db):
    con = sqlite3.connect(db)
    try:
        batches = {r[0] for r in con.execute("SELECT batch_id FROM batches")}
        sums = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
            "SELECT f.name, SUM(b.calls), SUM(b.errors), SUM(b.total_ms) FROM buckets b"
            " JOIN functions f ON f.id = b.function GROUP BY f.name")}
        edges = con.execute("SELECT COALESCE(SUM(calls), 0) FROM edges").fetchone()[0]
        return batches, sums, edges
    finally:
        con.close()


def expected(reqs, batches):
    sums = {}
    for b in batches:
        for name, calls, errors, total in reqs[b][2]:
            c, e, t = sums.get(name, (0, 0, 0.0))
            sums[name] = (c + calls, e + errors, t + total)
    return sums


def figures(reqs, seconds, conns):
    """What the clients saw: requests answered 200 per second of the run,
    the latency of those answers, and how many requests got each answer."""
    lat = sorted(v[1] for v in reqs.values() if v[0] == "200")
    count = {}
    for v in reqs.values():
        count[v[0]] = count.get(v[0], 0) + 1
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000 if lat else None  # noqa: E731
    return {"connections": conns, "seconds": seconds, "answered_200": len(lat),
            "requests_per_s": len(lat) / seconds, "p50_ms": p(0.5), "p99_ms": p(0.99),
            "max_ms": lat[-1] / 1000 if lat else None, "answers": dict(sorted(count.items()))}


def check_store(label, reqs, db, allow_in_flight, tap=tap, note=note):
    acked = {b for b, v in reqs.items() if v[0] == "200"}
    refused = {b for b, v in reqs.items() if v[0] not in ("200", "lost", "refused")}
    maybe = {b for b, v in reqs.items() if v[0] in ("lost", "refused")}
    batches, sums, edges = stored(db)
    tap(len(acked) > 0, f"{label}: requests were acknowledged ({len(acked)})")
    missing = acked - batches
    tap(not missing, f"{label}: every batch answered 200 is in the store",
        f"{len(missing)} missing, e.g. {sorted(missing)[:5]}")
    wrong = refused & batches
    tap(not wrong, f"{label}: no batch answered with an error is in the store ({len(refused)} such)",
        f"present: {sorted(wrong)[:5]}")
    unknown = batches - acked - (maybe if allow_in_flight else set())
    tap(not unknown, f"{label}: the store holds no batch that was not acknowledged"
        + (" or in flight" if allow_in_flight else ""), f"unexpected: {sorted(unknown)[:5]}")
    present = batches & reqs.keys()
    if allow_in_flight:
        note(f"{label}: {len(maybe)} requests in flight or refused around the kill,"
             f" {len(maybe & batches)} of them committed")
    want = expected(reqs, present)
    diff = {k: (sums.get(k), want.get(k)) for k in set(sums) | set(want) if sums.get(k) != want.get(k)}
    tap(not diff, f"{label}: stored calls, errors and total_ms per function equal the acknowledged"
        f" payloads{' plus the committed in-flight ones' if allow_in_flight else ''}"
        f" ({sum(v[0] for v in want.values())} calls)",
        "\n".join(f"{k}: stored {a}, expected {b}" for k, (a, b) in sorted(diff.items())[:10]))
    tap(edges == 4 * len(present), f"{label}: stored edge calls equal 4 per committed batch",
        f"stored {edges}, expected {4 * len(present)}")


def run(label, seconds, conns, kill_at=None, tap=tap, note=note):
    """One run; its assertions go to tap(ok, what, diag) (TAP lines by
    default), and it returns figures() of what the clients saw."""
    tmp = tempfile.mkdtemp(prefix=f"codensm-load-{label}-")
    db = os.path.join(tmp, "codensm.db")
    _, out, _ = cli(db, "project", "create", "load", "--plan", "scale")
    key = dict(line.split(": ", 1) for line in out.strip().splitlines())["ingest key"]
    srv, port = start(db, tmp)
    logpath = os.path.join(tmp, "requests.log")
    gen = subprocess.Popen([LOADGEN, f"http://127.0.0.1:{port}/codensm/ingest", key,
                            str(seconds), str(conns), logpath])
    t0 = time.time()
    try:
        if kill_at is not None:
            time.sleep(kill_at)
            srv.send_signal(signal.SIGKILL)
            srv.wait()
            time.sleep(1)
            srv, _ = start(db, tmp, f"127.0.0.1:{port}")
        rc = gen.wait(seconds + 60)
        elapsed = time.time() - t0
        tap(rc == 0, f"{label}: the load generator ran {seconds} s with {conns} connections",
            f"exit {rc}")
        reqs = read_log(logpath)
        fig = figures(reqs, elapsed, conns)
        # every request was answered while the server was up: the server is
        # still there and answers a fresh request
        tap(srv.poll() is None, f"{label}: the server is still running")
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(30)
        tap(rc == 0, f"{label}: the server stops cleanly after the load", f"exit {rc}")
        check_store(label, reqs, db, kill_at is not None, tap, note)
        return fig
    finally:
        if gen.poll() is None:
            gen.kill()
        if srv.poll() is None:
            srv.kill()
        if os.environ.get("CODENSM_KEEP_LOAD"):
            note(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    conns = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    if not (os.access(BIN, os.X_OK) and os.access(LOADGEN, os.X_OK)):
        tap(False, f"{BIN} and {LOADGEN} are built")
    else:
        run("steady", seconds, conns)
        run("kill -9", seconds, conns, kill_at=seconds / 3)
    print(f"1..{n}")


if __name__ == "__main__":
    main()
