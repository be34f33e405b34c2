"""serverlib.py: start the real codensm-server on a free port with a fresh
database, create projects with its CLI, and speak HTTP to it.

The database is a SQLite file, or, when CODENSM_TEST_PG holds a PostgreSQL
URL (tests/suites/server.sh starts a throwaway cluster with
tests/pgcluster.sh), a fresh schema of that database for each Server: the
server gets the URL with search_path set to it.  Server.sql() and
Server.write() run SQL on either, so a test reads and asserts the same
rows on both.  A test that is about SQLite itself (its file, its
migrations) is marked @sqlite_only; @pg_only marks the reverse.

The binary is $CODENSM_BUILD/bin/codensm-server (build/ by default); the
tests build nothing themselves.
"""
import http.client
import json
import os
import re
import secrets
import select
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("CODENSM_BUILD", "build")
BIN = os.path.join(ROOT, BUILD, "bin", "codensm-server") if not os.path.isabs(BUILD) \
    else os.path.join(BUILD, "bin", "codensm-server")
WEB = os.path.join(ROOT, "tools", "server", "web")
PG = os.environ.get("CODENSM_TEST_PG") or None
BACKEND = "postgresql" if PG else "sqlite"


def sqlite_only(x):
    """A test (class or method) about SQLite itself: left out on PostgreSQL."""
    return None if PG else x


def pg_only(x):
    """A test (class or method) about PostgreSQL: left out on SQLite."""
    return x if PG else None


def psql(sql, url=None, schema=None):
    """Runs sql through psql on url (the test cluster); returns the rows as
    tuples of Python values (int, float, bytes for bytea, None, str)."""
    env = dict(os.environ)
    if schema:
        env["PGOPTIONS"] = f"-csearch_path={schema}"
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-R", "\x1e",
                        "-P", "null=\x1d", "-v", "ON_ERROR_STOP=1", "-d", url or PG, "-c", sql],
                       capture_output=True, text=True, timeout=60, env=env)
    if p.returncode != 0:
        raise AssertionError(f"psql: {sql!r}: {p.stderr.strip()}")
    out = p.stdout[:-1] if p.stdout.endswith("\n") else p.stdout
    return [tuple(pg_value(v) for v in row.split("\x1f")) for row in out.split("\x1e") if row != ""]


def pg_value(v):
    if v == "\x1d":
        return None
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if re.fullmatch(r"-?(\d+\.\d*|\d*\.\d+|\d+)(e[-+]?\d+)?|-?Infinity|NaN", v):
        return float(v)
    if v.startswith("\\x") and re.fullmatch(r"[0-9a-f]*", v[2:]):
        return bytes.fromhex(v[2:])
    return v


def pg_literal(a):
    if a is None:
        return "NULL"
    if isinstance(a, bool):
        return "1" if a else "0"
    if isinstance(a, (int, float)):
        return repr(a)
    if isinstance(a, bytes):
        return "'\\x" + a.hex() + "'::bytea"
    return "'" + str(a).replace("'", "''") + "'"


def pg_bind(query, args):
    """query's ? placeholders (outside quotes) replaced by args as literals."""
    out, i, quote = [], 0, False
    for ch in query:
        if ch == "'":
            quote = not quote
        if ch == "?" and not quote:
            out.append(pg_literal(args[i]))
            i += 1
        else:
            out.append(ch)
    return "".join(out)


def new_db(tmp, name="codensm.db"):
    """A fresh database for a server: a file under tmp, or a fresh schema of
    the test cluster (its URL)."""
    if not PG:
        return os.path.join(tmp, name)
    schema = "t_" + secrets.token_hex(6)
    psql(f"CREATE SCHEMA {schema}")
    return f"{PG}?options=-csearch_path%3D{schema}"


def db_schema(db):
    m = re.search(r"search_path%3D(\w+)", db)
    return m.group(1) if m else None


def sanitizer_reports(log):
    """The lines of a sanitizer report in a server's stderr: an ASan+UBSan
    build (`make ASAN=1`) writes them there, and a finding that does not
    abort (a leak at exit, a UBSan check that recovers) shows nowhere else."""
    return [l for l in log.splitlines()
            if "runtime error:" in l or "Sanitizer" in l or "SUMMARY: " in l]


def cli(db, *args, check=True):
    """Runs codensm-server with args; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BIN, *args, "--db", db], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"codensm-server {' '.join(args)} exited {p.returncode}: {p.stderr}")
    return p.returncode, p.stdout, p.stderr


class Server:
    """One server process on 127.0.0.1:<free port> over db (a temp file)."""

    def __init__(self, tmp, web=None, env=None):
        self.tmp = tmp
        self.db = new_db(tmp)
        self.web = web
        self.env = env          # extra environment (the test clock)
        self.proc = None
        self.port = None

    def project(self, name, plan="free"):
        """Creates a project; returns {'ingest': key, 'dashboard': key, 'manage': key, 'url': ...}."""
        _, out, _ = cli(self.db, "project", "create", name, "--plan", plan)
        lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
        return {"ingest": lines["ingest key"], "dashboard": lines["dashboard key"],
                "manage": lines["manage key"], "url": lines["dashboard"], "plan": lines["plan"]}

    def start(self):
        args = [BIN, "--listen", "127.0.0.1:0", "--db", self.db]
        if self.web:
            args += ["--web", self.web]
        self.stderr = open(os.path.join(self.tmp, "server.log"), "ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env={**os.environ, **(self.env or {})})
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        if not ready:
            self.proc.kill()
            raise AssertionError("codensm-server did not print its address within 10 s")
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on http://127.0.0.1:"):
            self.proc.kill()
            raise AssertionError(f"unexpected first line from codensm-server: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def stop(self):
        """SIGTERM, and the exit status (0 for a clean stop)."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()
        self.proc = None
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()
        self.proc = None

    # ---- HTTP ----------------------------------------------------------------

    def request(self, method, path, body=None, headers=None):
        """Returns (status, headers dict (lowercase names), raw body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                c.putheader(k, v)
            if body is not None:
                c.putheader("Content-Length", str(len(body)))
            c.endheaders()
            if body is not None:
                c.send(body)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def post(self, key, payload, headers=None, probes=False):
        """POST /codensm/ingest; payload is an object (sent as JSON) or bytes.
        Returns (status, parsed JSON body).  Every 2xx answer carries the
        project's probe specs, test_probes.py's subject: unless probes is
        set, "probes" is taken out (a new incident arms probes), so that the
        other tests compare the rest of the answer."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h = {"Content-Type": "application/json"}
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        status, _, data = self.request("POST", "/codensm/ingest", body, h)
        answer = json.loads(data)
        if not probes and isinstance(answer, dict):
            answer.pop("probes", None)
        return status, answer

    def get(self, key, project, view, **params):
        """GET /api/projects/{project}/{view}?params; returns (status, JSON)."""
        from urllib.parse import quote, urlencode
        path = f"/api/projects/{quote(project, safe='')}/{view}"
        if params:
            path += "?" + urlencode(params)
        h = {"Authorization": f"Bearer {key}"} if key is not None else {}
        status, _, data = self.request("GET", path, None, h)
        return status, json.loads(data)

    def sql(self, query, *args):
        """Reads the server's database directly (a second connection)."""
        if PG:
            return psql(pg_bind(query, args), schema=db_schema(self.db))
        con = sqlite3.connect(self.db)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def tables(self):
        """The names of the tables in the server's database."""
        if PG:
            return [r[0] for r in self.sql("SELECT tablename FROM pg_tables"
                                           " WHERE schemaname = current_schema()")]
        return [r[0] for r in self.sql("SELECT name FROM sqlite_master WHERE type = 'table'")]

    def write(self, *statements):
        """Runs (sql, args) pairs on the server's database in one transaction."""
        if PG:
            psql("BEGIN; " + "; ".join(pg_bind(q, a) for q, a in statements) + "; COMMIT",
                 schema=db_schema(self.db))
            return
        con = sqlite3.connect(self.db)
        try:
            with con:
                for q, a in statements:
                    con.execute(q, a)
        finally:
            con.close()


def fn(name, calls, errors=0, total_ms=None, department="engine", weight=1, **extra):
    """A function entry of the seed contract, plus any extra fields."""
    e = {"name": name, "department": department, "value_weight": weight,
         "calls": calls, "errors": errors,
         "total_ms": float(calls) if total_ms is None else total_ms}
    e.update(extra)
    return e


def at(seconds_ago, **meta):
    """A _meta block saying the interval ended seconds_ago."""
    end = time.time() - seconds_ago
    m = {"interval": [end - 15, end]}
    m.update(meta)
    return m


class ServerTest(unittest.TestCase):
    """A fresh server and database for each test class."""
    web = None

    @classmethod
    def setUpClass(cls):
        if not os.access(BIN, os.X_OK):
            raise AssertionError(f"{BIN} is not built: run make first")
        cls.tmp = tempfile.mkdtemp(prefix="codensm-server-test-")
        cls.srv = Server(cls.tmp, cls.web)
        cls.prepare()
        cls.srv.start()

    @classmethod
    def prepare(cls):
        """Runs before the server starts: create projects here."""

    @classmethod
    def tearDownClass(cls):
        # A clean stop exits 0; a sanitizer build exits non-zero when it
        # found a leak or a race, and the log says which.
        rc = cls.srv.stop()
        with open(os.path.join(cls.tmp, "server.log"), errors="replace") as f:
            log = f.read()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"codensm-server exited {rc} on SIGTERM:\n{log[-3000:]}")
        if sanitizer_reports(log):
            raise AssertionError(f"codensm-server's stderr holds a sanitizer report:\n{log[-3000:]}")

    def assertJson(self, got, status, body):
        self.assertEqual(got, (status, body))


def assert_probe_on_migrated(test, srv, project, ingest):
    """After a migration: `project`'s new manage key (made by the CLI)
    creates probe p-1 on old.pay, and the next ingest answer carries it."""
    _, out, _ = cli(srv.db, "project", "manage-key", project)
    key = out.split(": ")[1].strip()
    status, _, data = srv.request("POST", f"/api/projects/{project}/probes",
                                  b'{"target":"old.pay","instrument":{"type":"incr"}}',
                                  {"Authorization": f"Bearer {key}"})
    test.assertEqual((status, json.loads(data)["id"]), (201, "p-1"))
    answer = srv.post(ingest, {"functions": []}, probes=True)[1]
    test.assertEqual(answer["probes"]["p-1"]["target"], "old.pay")


def set_clock(path, t):
    """Set the server's test clock (the file CODENSM_TEST_CLOCK names) to
    `t` seconds, in one rename so that the server never reads half a line."""
    with open(path + ".new", "w") as f:
        f.write(f"{t}\n")
    os.replace(path + ".new", path)


class OnTestClock:
    """A mixin for a unittest.TestCase: self.srv, a server (not started) on
    the test clock self.clock in a fresh folder, killed and removed at the
    end; self.set_clock(t) moves the clock."""
    PREFIX = "codensm-clock-test-"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix=self.PREFIX)
        self.clock = os.path.join(self.tmp, "clock")
        self.start_clock()
        self.srv = Server(self.tmp, env={"CODENSM_TEST_CLOCK": self.clock})

    def start_clock(self):
        """Runs before the server is made: set the clock here if needed."""

    def tearDown(self):
        if self.srv.proc:
            self.srv.kill9()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def set_clock(self, t):
        set_clock(self.clock, t)


class TwoServersOnOneDb:
    """A mixin for a unittest.TestCase: servers self.a and self.b on one
    database, both started, with project PROJECT made through self.a
    (self.p: its keys); both killed and their folder removed at the end."""
    PROJECT = "shared"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="codensm-two-servers-")
        self.a = Server(self.tmp)
        self.p = self.a.project(self.PROJECT)
        self.b = Server(self.tmp)
        self.b.db = self.a.db
        self.a.start()
        self.b.start()

    def tearDown(self):
        for s in (self.a, self.b):
            if s.proc:
                s.kill9()
        shutil.rmtree(self.tmp, ignore_errors=True)
