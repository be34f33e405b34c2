"""scalelib.py: several real codensm-server processes on one real store
(an SQLite file, or a throwaway PostgreSQL cluster from tests/pgcluster.sh),
clients that spread real ingest payloads over them and resend what was not
answered, and the store read back through the dashboard API and SQL.

A payload is a pure function of (tag, seq): its batch id is unique, and the
calls, errors and total_ms it carries per function are known, so a test can
say exactly what the store must hold.  total_ms values are multiples of 0.25,
exact in binary, so sums compare to the unit.
"""
import http.client
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "server"))
from serverlib import BIN, ROOT, sanitizer_reports  # noqa: E402,F401

PGCLUSTER = os.path.join(ROOT, "tests", "pgcluster.sh")
FUNCTIONS = 40          # distinct function names the payloads draw from
PER_BATCH = 6           # functions in one payload


def have_postgres():
    return any(os.path.exists(os.path.join("/usr/lib/postgresql", v, "bin", "initdb"))
               for v in (os.listdir("/usr/lib/postgresql")
                         if os.path.isdir("/usr/lib/postgresql") else []))


# ---- stores ----------------------------------------------------------------

class SQLiteStore:
    """One SQLite file that every server opens (WAL: several processes)."""
    name = "sqlite"

    def __init__(self, tmp):
        self.db = os.path.join(tmp, "codensm.db")

    def fresh(self, name):
        """The address of another, empty store of this kind."""
        return os.path.join(os.path.dirname(self.db), name + ".db")

    def sql(self, query):
        con = sqlite3.connect(self.db, timeout=30)
        try:
            return [tuple(r) for r in con.execute(query).fetchall()]
        finally:
            con.close()

    def close(self):
        pass


class PGStore:
    """A throwaway cluster (tests/pgcluster.sh) under tmp/pg; db is its URL."""
    name = "postgresql"

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "pg")
        p = subprocess.run(["bash", PGCLUSTER, "start", self.dir], capture_output=True,
                           text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError(f"tests/pgcluster.sh start failed: {p.stderr.strip()}")
        self.db = p.stdout.strip().splitlines()[-1]

    def fresh(self, name):
        """The address of another, empty database in this cluster."""
        self.sql(f"CREATE DATABASE {name}")
        return self.db.rsplit("/", 1)[0] + "/" + name

    def sql(self, query):
        """Rows of query as tuples of strings (psql's unaligned output)."""
        p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.db, "-c", query], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"psql {query!r}: {p.stderr.strip()}")
        return [tuple(line.split("\t")) for line in p.stdout.splitlines() if line]

    def stop_db(self):
        subprocess.run(["bash", PGCLUSTER, "stop", self.dir], check=True, timeout=120)

    def restart_db(self):
        subprocess.run(["bash", PGCLUSTER, "restart", self.dir], check=True, timeout=120,
                       stdout=subprocess.DEVNULL)

    def cpu_seconds(self):
        """utime + stime of the cluster's processes so far (postmaster and
        the backends alive now, plus what exited children left in the
        postmaster's cutime/cstime)."""
        pid = int(open(os.path.join(self.dir, "data", "postmaster.pid")).readline())
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for p in [pid] + children(pid):
            try:
                f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(f[11]) + int(f[12])
            if p == pid:
                total += int(f[13]) + int(f[14])
        return total / tick

    def close(self):
        subprocess.run(["bash", PGCLUSTER, "stop", self.dir], timeout=120)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def open_store(backend, tmp):
    return SQLiteStore(tmp) if backend == "sqlite" else PGStore(tmp)


# ---- servers ---------------------------------------------------------------

def cli(db, *args):
    """codensm-server ARGS --db DB: (exit code, stdout, stderr)."""
    p = subprocess.run([BIN, *args, "--db", db], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def create_project(db, name, plan="scale"):
    rc, out, err = cli(db, "project", "create", name, "--plan", plan)
    if rc != 0:
        raise AssertionError(f"project create {name} exited {rc}: {err.strip()}")
    d = dict(line.split(": ", 1) for line in out.strip().splitlines())
    return {"ingest": d["ingest key"], "dashboard": d["dashboard key"], "name": name}


class Server:
    """One codensm-server process on 127.0.0.1; its stderr in tmp/server-N.log."""

    def __init__(self, tmp, db, index, env=None):
        self.tmp, self.db, self.index, self.env = tmp, db, index, env
        self.proc = None
        self.port = 0
        self.rc = None

    def spawn(self, port=0):
        self.log = open(os.path.join(self.tmp, f"server-{self.index}.log"), "ab")
        self.proc = subprocess.Popen([BIN, "--listen", f"127.0.0.1:{port}", "--db", self.db],
                                     stdout=subprocess.PIPE, stderr=self.log,
                                     env={**os.environ, **(self.env or {})})
        return self

    def ready(self, timeout=30):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode() if r else ""
        if not line.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"server {self.index} did not start: {line!r}; log:\n"
                                 + self.log_text()[-2000:])
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.rc = self.proc.wait()
        return self.rc

    def stop(self):
        """SIGTERM; the exit status (0 for a clean stop), or the one it had."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.rc = "hung on SIGTERM"
                return self.rc
            self.rc = self.proc.returncode
        elif self.rc is None:
            self.rc = self.proc.returncode
        return self.rc

    def close(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.log.close()

    def log_text(self):
        with open(os.path.join(self.tmp, f"server-{self.index}.log"), errors="replace") as f:
            return f.read()

    def cpu_seconds(self):
        try:
            f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def start_servers(tmp, db, n, env=None):
    """n servers started at once (so also at once on a new store)."""
    servers = [Server(tmp, db, i, env).spawn() for i in range(n)]
    try:
        for s in servers:
            s.ready()
    except AssertionError:
        for s in servers:
            s.close()
        raise
    return servers


# ---- HTTP ------------------------------------------------------------------

class Client:
    """One thread's keep-alive connections, one per server port."""

    def __init__(self, timeout=30):
        self.conns = {}
        self.timeout = timeout

    def request(self, port, method, path, body=None, headers=None):
        """(status, parsed JSON or None) or None when no answer came."""
        c = self.conns.get(port)
        if c is None:
            c = self.conns[port] = http.client.HTTPConnection("127.0.0.1", port,
                                                              timeout=self.timeout)
        try:
            c.request(method, path, body, headers or {})
            r = c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException):
            c.close()
            del self.conns[port]
            return None
        if r.getheader("Connection", "").lower() == "close":
            c.close()
            del self.conns[port]
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, None

    def post(self, port, key, body):
        return self.request(port, "POST", "/codensm/ingest", body,
                            {"Content-Type": "application/json",
                             "Authorization": f"Bearer {key}"})

    def post_until_answered(self, port, key, body, tries=100):
        """post() again while the answer is none or 503 (a busy store), at
        most `tries` times; the last answer."""
        for _ in range(tries):
            got = self.post(port, key, body)
            if got and got[0] != 503:
                break
            time.sleep(0.05)
        return got

    def close(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}


def api(port, key, project, view, **params):
    from urllib.parse import urlencode
    path = f"/api/projects/{project}/{view}" + ("?" + urlencode(params) if params else "")
    got = Client().request(port, "GET", path, None, {"Authorization": f"Bearer {key}"})
    if got is None or got[0] != 200:
        raise AssertionError(f"GET {path} on port {port}: {got}")
    return got[1]


# ---- payloads --------------------------------------------------------------

def payload(tag, seq, calls=None):
    """(body bytes, {name: (calls, errors, total_ms)}, edge calls) of one
    runtime-shaped payload (docs/payload.md) with batch id tag-seq; calls,
    when given, is each function's count (PER_BATCH of them)."""
    end = time.time()
    fns, carried, edges = [], {}, []
    h = sum(map(ord, tag))
    names = []
    for k in range(PER_BATCH):
        i = (seq * 5 + k * 7 + h) % FUNCTIONS
        while i in names:
            i = (i + 1) % FUNCTIONS
        names.append(i)
        c = calls[k] if calls is not None else 1 + (seq * 31 + k * 17 + h * 13) % 97
        e = c // 5 if c % 5 == 0 else 0
        total = c * 0.25
        name = f"scale.d{i % 4}.fn{i}"
        fns.append({"name": name, "department": f"d{i % 4}", "value_weight": 2,
                    "calls": c, "errors": e, "total_ms": total, "self_ms": total / 2,
                    "max_ms": 1.5, "hist": [[38, c - e], [40, e]],
                    "file": f"scale/d{i % 4}.c", "line": 10 + i})
        carried[name] = (c, e, total)
    for a, b in zip(names, names[1:]):
        edges.append({"caller": f"scale.d{a % 4}.fn{a}", "callee": f"scale.d{b % 4}.fn{b}",
                      "calls": 1})
    body = {"functions": fns, "edges": edges,
            "_meta": {"sdk": "codensm-scale-test", "version": "0.1.0", "service": "scale",
                      "host": "localhost", "pid": os.getpid(), "interval": [end - 15, end],
                      "dropped": 0, "repairs": 0, "batch_id": f"{tag}-{seq}",
                      "hist": "log2x2-ns"}}
    return json.dumps(body).encode(), carried, len(edges)


def sums(batches):
    """{name: (calls, errors, total_ms)} over batches' carried values."""
    out = {}
    for carried in batches:
        for name, (c, e, t) in carried.items():
            c0, e0, t0 = out.get(name, (0, 0, 0.0))
            out[name] = (c0 + c, e0 + e, t0 + t)
    return out


# ---- load with resends -----------------------------------------------------

class Load:
    """`threads` client threads post payloads for `seconds`, spreading
    them over the servers; a request without an answer or answered 503 is
    sent again, same body and batch id, to the next server, until it is
    answered otherwise (or `grace` seconds after the end).  Every attempt
    is recorded: (batch, server index, sent at, answered at, status or
    None)."""

    def __init__(self, servers, key, threads, seconds, tag="b", grace=60):
        self.servers, self.key, self.threads = servers, key, threads
        self.seconds, self.tag, self.grace = seconds, tag, grace
        self.lock = threading.Lock()
        self.attempts = []
        self.final = {}        # batch id -> final status (None: never answered)
        self.carried = {}      # batch id -> {name: (calls, errors, total_ms)}
        self.edges = {}        # batch id -> edge calls
        self.stop_at = None

    def run_thread(self, t):
        cl = Client()
        seq = 0
        n = len(self.servers)
        while time.time() < self.stop_at:
            body, carried, edges = payload(f"{self.tag}{t}", seq)
            bid = f"{self.tag}{t}-{seq}"
            with self.lock:
                self.carried[bid], self.edges[bid] = carried, edges
            target = (t + seq) % n
            status = None
            tries = 0
            while True:
                port = self.servers[target].port
                t0 = time.time()
                got = cl.post(port, self.key, body)
                status = got[0] if got else None
                with self.lock:
                    self.attempts.append((bid, target, t0, time.time(), status,
                                          got[1] if got else None))
                if status not in (None, 503) or time.time() > self.stop_at + self.grace:
                    break
                tries += 1
                target = (target + 1) % n
                if tries % n == 0:
                    time.sleep(0.1)
            with self.lock:
                self.final[bid] = status
            seq += 1
        cl.close()

    def start(self):
        self.t0 = time.time()
        self.stop_at = self.t0 + self.seconds
        self.workers = [threading.Thread(target=self.run_thread, args=(t,), daemon=True)
                        for t in range(self.threads)]
        for w in self.workers:
            w.start()
        return self

    def join(self):
        for w in self.workers:
            w.join(self.seconds + self.grace + 60)
        return not any(w.is_alive() for w in self.workers)

    def acked(self):
        return [b for b, s in self.final.items() if s == 200]

    def statuses(self):
        out = {}
        for a in self.attempts:
            out[a[4]] = out.get(a[4], 0) + 1
        return out


# ---- what the store says ---------------------------------------------------

def api_sums(port, project):
    """{name: (calls, errors, total_ms)} of the functions view over 24 h."""
    rows = api(port, project["dashboard"], project["name"], "functions",
               window="24h", limit=500)["rows"]
    return {r["name"]: (r["calls"], r["errors"], r["total_ms"]) for r in rows if r["calls"]}


def stored_batches(store, project):
    return {r[0] for r in store.sql(
        "SELECT b.batch_id FROM batches b JOIN projects p ON p.id = b.project"
        f" WHERE p.name = '{project}'")}


class ScaleTest(unittest.TestCase):
    """A fresh store (per class) on self.backend; servers per test."""
    backend = None

    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise AssertionError(f"{BIN} is not built: run make first")
        if cls.backend == "postgresql" and not have_postgres():
            raise unittest.SkipTest("no PostgreSQL server installed (make deps)")
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix=f"codensm-scale-{cls.backend}-")
        cls.store = open_store(cls.backend, cls.tmp)
        cls.db = cls.store.db
        # the schema, made once before any test starts servers on it
        rc, _, err = cli(cls.db, "project", "list")
        if rc != 0:
            cls.tearDownClass()     # unittest does not when setUpClass fails
            raise AssertionError(f"codensm-server project list --db {cls.db}: {err.strip()}")

    @classmethod
    def tearDownClass(cls):
        cls.store.close()
        if not os.environ.get("CODENSM_KEEP_SCALE"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def shortDescription(self):
        """The test's sentence, prefixed with its backend."""
        d = super().shortDescription()
        return f"{self.backend}: {d}" if d else None

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.close()

    def servers_up(self, n, env=None):
        self.servers = start_servers(self.tmp, self.db, n, env)
        return self.servers

    def stop_all(self, killed=()):
        """Every server still alive (none may have died), then SIGTERM:
        each exits 0 and its stderr holds no sanitizer report; the killed
        ones ended by SIGKILL."""
        for s in self.servers:
            if s in killed:
                self.assertEqual(s.rc, -signal.SIGKILL, f"server {s.index} was killed -9")
                continue
            self.assertTrue(s.alive(), f"server {s.index} died (exit {s.proc.returncode}):\n"
                            + s.log_text()[-2000:])
        for s in self.servers:
            if s not in killed:
                self.assertEqual(s.stop(), 0, f"server {s.index} exit status on SIGTERM:\n"
                                 + s.log_text()[-2000:])
                self.assertEqual(sanitizer_reports(s.log_text()), [])

    def assertStoreEquals(self, project, batches, port):
        """The dashboard's per-function sums and the summary's totals equal
        exactly the payloads of `batches`, each counted once; the store's
        batch ids are exactly `batches`."""
        want = sums(self.load.carried[b] for b in batches)
        got = api_sums(port, project)
        diff = {k: (got.get(k), want.get(k)) for k in set(got) | set(want)
                if got.get(k) != want.get(k)}
        self.assertEqual(diff, {}, "per function: (stored, expected)")
        s = api(port, project["dashboard"], project["name"], "summary", window="24h")
        calls = sum(v[0] for v in want.values())
        errors = sum(v[1] for v in want.values())
        self.assertEqual((s["calls"], s["errors"], s["nsm"]), (calls, errors, 2 * (calls - errors)))
        stored = stored_batches(self.store, project["name"])
        self.assertEqual(len(stored), len(batches))
        self.assertEqual(stored, set(batches))
