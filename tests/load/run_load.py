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

Prints TAP, and the figures (requests/s held, p50/p99 latency) as comments.
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


def figures(label, reqs, seconds, conns):
    lat = sorted(v[1] for v in reqs.values() if v[0] == "200")
    count = {}
    for v in reqs.values():
        count[v[0]] = count.get(v[0], 0) + 1
    if not lat:
        print(f"# {label}: no request answered 200", flush=True)
        return 0
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000  # noqa: E731
    rate = len(lat) / seconds
    print(f"# {label}: {conns} connections, {seconds:.0f} s: {len(lat)} answered 200"
          f" ({rate:.0f} requests/s, {rate * 5:.0f} function deltas/s), latency p50 {p(0.5):.1f} ms,"
          f" p99 {p(0.99):.1f} ms, max {lat[-1] / 1000:.1f} ms; answers {dict(sorted(count.items()))}",
          flush=True)
    return rate


def check_store(label, reqs, db, allow_in_flight):
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
        print(f"# {label}: {len(maybe)} requests in flight or refused around the kill,"
              f" {len(maybe & batches)} of them committed", flush=True)
    want = expected(reqs, present)
    diff = {k: (sums.get(k), want.get(k)) for k in set(sums) | set(want) if sums.get(k) != want.get(k)}
    tap(not diff, f"{label}: stored calls, errors and total_ms per function equal the acknowledged"
        f" payloads{' plus the committed in-flight ones' if allow_in_flight else ''}"
        f" ({sum(v[0] for v in want.values())} calls)",
        "\n".join(f"{k}: stored {a}, expected {b}" for k, (a, b) in sorted(diff.items())[:10]))
    tap(edges == 4 * len(present), f"{label}: stored edge calls equal 4 per committed batch",
        f"stored {edges}, expected {4 * len(present)}")


def run(label, seconds, conns, kill_at=None):
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
        rate = figures(label, reqs, elapsed, conns)
        # every request was answered while the server was up: the server is
        # still there and answers a fresh request
        tap(srv.poll() is None, f"{label}: the server is still running")
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(30)
        tap(rc == 0, f"{label}: the server stops cleanly after the load", f"exit {rc}")
        check_store(label, reqs, db, kill_at is not None)
        return rate
    finally:
        if gen.poll() is None:
            gen.kill()
        if srv.poll() is None:
            srv.kill()
        if os.environ.get("CODENSM_KEEP_LOAD"):
            print(f"# kept {tmp}")
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
