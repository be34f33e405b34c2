"""harness.py: what the integration tests share: paths into the build, a
compiler for small instrumented programs, a fault-injecting HTTP receiver
that records every body it commits, and the sum of the deltas it received.

The receiver is a test double of the ingest server, not a reimplementation:
it commits whatever body it is told to commit and answers what it is told to
answer (200, 503, 429, 413, a delay, a reset connection, no answer at all),
so each test can say exactly which fault the runtime meets and when.
It can also serve HTTPS with a given certificate, and go down for good
(listening socket closed, open connections cut) after N commits.
"""
import atexit
import collections
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("CODENSM_BUILD", "build"))
LIB = os.path.join(BUILD, "lib")
SAMPLES = os.path.join(BUILD, "samples")
SAMPLES_SRC = os.path.join(ROOT, "samples")
PROGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs")
INCLUDE = os.path.join(ROOT, "runtime", "include")
SANITIZER = os.environ.get("CODENSM_SANITIZER", "")
SAN_FLAGS = {
    "asan": ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"],
    "tsan": ["-fsanitize=thread"],
}.get(SANITIZER, [])
API_KEY = "cnsm_integration_test_key"
CC = os.environ.get("CC", "cc")
CXX = os.environ.get("CXX", "c++")

# One scratch folder for the whole run: compiled test programs are cached
# here by name, so a program several tests share is built once.
SCRATCH = tempfile.mkdtemp(prefix="codensm-it-")
if not os.environ.get("CODENSM_KEEP_SCRATCH"):  # set it to look at the programs after a run
    atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)
_built = {}
_build_lock = threading.Lock()


def have(tool):
    return shutil.which(tool) is not None


def runtime_built():
    return os.path.exists(os.path.join(LIB, "libcodensm-rt.so"))


def sample(name):
    return os.path.join(SAMPLES, name)


def rt_link(static=False):
    """The link flags of runtime/build.mk's RT_LINK / RT_LINK_STATIC."""
    hooks = ["-Wl,-u,__cyg_profile_func_enter", "-Wl,-u,__cyg_profile_func_exit"]
    if static:
        libs = subprocess.run(["pkg-config", "--libs", "jansson"],
                              capture_output=True, text=True).stdout.split()
        return hooks + [os.path.join(LIB, "libcodensm-rt.a")] + libs + ["-pthread", "-ldl"]
    return ["-L" + LIB, "-Wl,-rpath," + LIB, "-Wl,--push-state,--no-as-needed"] + hooks + \
        ["-lcodensm-rt", "-Wl,--pop-state"]


def compile_prog(name, sources, cwd=PROGS, compiler=None, flags=(), link=None,
                 instrument=True, shared=False):
    """Build `sources` (paths relative to `cwd`, compiled from `cwd` so the
    DWARF compilation directory is `cwd`) into SCRATCH/name; cached by name.
    `link` defaults to the shared runtime.  Raises AssertionError with the
    compiler's output on failure."""
    with _build_lock:
        if name in _built:
            return _built[name]
        out = os.path.join(SCRATCH, name)
        objdir = os.path.join(SCRATCH, "obj-" + name)
        os.makedirs(objdir, exist_ok=True)
        objs = []
        for src in sources:
            cxx = src.endswith((".cpp", ".cc"))
            cc = compiler or (CXX if cxx else CC)
            obj = os.path.join(objdir, re.sub(r"[/.]", "_", src) + ".o")
            cmd = [cc, "-O1", "-g", "-pthread", "-I" + INCLUDE] + SAN_FLAGS + list(flags)
            cmd += ["-std=c++17"] if cxx else ["-std=gnu11"]
            if instrument:
                cmd.append("-finstrument-functions")
            if shared:
                cmd.append("-fPIC")
            _check_run(cmd + ["-c", src, "-o", obj], cwd)
            objs.append(obj)
        cc = compiler or (CXX if any(s.endswith((".cpp", ".cc")) for s in sources) else CC)
        if link is None:
            link = rt_link() if instrument and not shared else []
        cmd = [cc] + (["-shared"] if shared else []) + ["-o", out] + objs + SAN_FLAGS + \
            list(link) + ["-pthread", "-ldl"]
        _check_run(cmd, cwd)
        _built[name] = out
        return out


def _check_run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("build failed: %s\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))


def decl_line(path, func):
    """The line where `func` (e.g. "card_charge" or "Circle::area") is
    defined in `path`: the first line that starts a definition of it."""
    pat = re.compile(r"^[A-Za-z_].*?\b" + re.escape(func) + r"\s*\(")
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if pat.match(line) and not line.rstrip().endswith(";"):
                return n
    raise AssertionError("no definition of %s in %s" % (func, path))


def clean_env(**extra):
    """The environment without any CODENSM_* of the caller's, plus extra
    (a value of None removes the variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODENSM_")}
    if SANITIZER == "asan":
        env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(ROOT, "tests", "lsan.supp"))
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


class Run:
    """A finished run: returncode, stdout, stderr, pid, seconds."""

    def __init__(self, p, out, err, seconds):
        self.returncode, self.stdout, self.stderr = p.returncode, out, err
        self.pid, self.seconds = p.pid, seconds

    def __repr__(self):
        return "Run(rc=%s, %.2fs, stdout=%r, stderr=%r)" % (
            self.returncode, self.seconds, self.stdout[-500:], self.stderr[-1500:])


def run(argv, env, timeout=60, cwd=None):
    """Run a program in its own process group: on a time-out the whole group
    is killed, so a child it forked cannot keep the pipes (and the test) open."""
    start = time.monotonic()
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out, err = "", "(output lost: a process outside the group holds the pipes)"
        raise AssertionError("%s did not exit within %s s; stderr: %s" % (argv, timeout, err[-2000:]))
    global _last_run
    _last_run = Run(p, out, err, time.monotonic() - start)
    return _last_run


# The last finished run, named when counts do not match: its stderr says
# why (a refused body, a flush that ran out of time) in CI's log.
_last_run = None


# ---- the receiver ----------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def _answer(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    def do_POST(self):
        rec = self.server.receiver
        raw = self._read_body()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        action = rec._action(body)
        entry = {"path": self.path, "headers": dict(self.headers), "raw": raw, "json": body,
                 "action": action, "committed": False, "time": time.time(), "done": False}
        with rec.lock:
            rec.requests.append(entry)
        try:
            self._act(rec, entry, body, action)
        finally:
            entry["done"] = True  # answered, reset or given up: nothing more will happen
        if rec.down and rec.down_after is not None:
            rec.go_down()

    def _act(self, rec, entry, body, action):
        if rec.down:
            return self._reset()  # went down: a request already on its way is cut
        if body is None:
            return self._answer(400, {"error": "body is not JSON"})
        if isinstance(action, tuple) and action[0] == "delay":
            time.sleep(action[1])
            action = 200
        if action == "hang":
            time.sleep(rec.hang_seconds)
            return self._reset()
        if action == "reset":
            return self._reset()
        if action == "drop":  # closed without an answer, as a stale keep-alive connection is
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return None
        if action == "commit-reset":
            rec._commit(entry)
            return self._reset()
        if action == 200:
            dup = rec._commit(entry)
            if dup is None:
                return self._reset()
            return self._answer(200, {"ok": True, "functions": len(body.get("functions", [])),
                                      **({"duplicate": True} if dup else {}), **rec.answer_extra})
        errors = {503: "unavailable", 429: "quota_exceeded", 413: "payload too large",
                  401: "missing or unknown ingest key", 400: "bad request"}
        return self._answer(action, {"error": errors.get(action, "error")})


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # resets and closed sockets are the point of some tests

    def finish_request(self, request, client_address):
        """On the connection's own thread: the TLS handshake (when serving
        HTTPS; a failed one is recorded, not served), then the handler."""
        rec = self.receiver
        if rec.tls is not None:
            try:
                request = rec.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                with rec.lock:
                    rec.tls_failures.append(str(e))
                return
        with rec.lock:
            if rec.down:
                return
            rec.conns.add(request)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            with rec.lock:
                rec.conns.discard(request)
            if rec.tls is not None:
                request.close()


class Receiver:
    """An in-process HTTP receiver on 127.0.0.1.  `plan` lists the actions
    for the next requests in order (200, 503, 429, 413, ("delay", s),
    "reset", "commit-reset", "drop" (closed, no answer), "hang"); after it runs out, `rule(body)` decides
    (None: 200).  Bodies answered 200 or "commit-reset" are committed; a
    batch_id committed before is answered 200 + duplicate and not kept twice.

    tls=(certfile, keyfile): HTTPS on the same port (url says https://);
    handshakes that fail are listed in `tls_failures`.  down_after=N: once
    N bodies are committed the receiver goes down for good (go_down)."""

    def __init__(self, plan=(), rule=None, tls=None, down_after=None):
        self.lock = threading.Lock()
        self.requests = []
        self.plan = list(plan)
        self.rule = rule
        self.hang_seconds = 30
        # Added to every 200 answer (a server's probe specs: {"probes": {...}}).
        self.answer_extra = {}
        self._ids = set()
        self.tls = None
        self.tls_failures = []
        self.conns = set()
        self.down = False
        self.down_after = down_after
        self._closed = False
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.receiver = self
        self.port = self.server.server_address[1]
        self.url = "%s://127.0.0.1:%d/codensm/ingest" % ("https" if tls else "http", self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        with self.lock:
            if self._closed:
                return
            self._closed = True
        self.server.shutdown()
        self.server.server_close()

    def go_down(self):
        """The endpoint dies: nothing is committed any more, open
        connections are cut and new ones refused (the port is closed)."""
        with self.lock:
            self.down = True
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _action(self, body):
        with self.lock:
            if self.plan:
                return self.plan.pop(0)
        return self.rule(body) if self.rule and body is not None else 200

    def _commit(self, entry):
        """True if the batch id was committed before, None if the receiver
        is down (nothing committed), else False."""
        bid = (entry["json"].get("_meta") or {}).get("batch_id")
        with self.lock:
            if self.down:
                return None
            dup = bid is not None and bid in self._ids
            if bid is not None:
                self._ids.add(bid)
            entry["committed"] = not dup
            if self.down_after is not None and \
                    sum(r["committed"] for r in self.requests) >= self.down_after:
                self.down = True
            return dup

    def committed(self):
        with self.lock:
            return [r["json"] for r in self.requests if r["committed"]]

    def all_requests(self):
        with self.lock:
            return list(self.requests)


def closed_port_url():
    """An endpoint on which nothing listens (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return "http://127.0.0.1:%d/codensm/ingest" % port


# ---- summing what arrived ---------------------------------------------------

class Totals:
    """The sum of every committed body, deduplicated by _meta.batch_id."""

    def __init__(self, bodies):
        self.fns = {}
        self.edges = collections.Counter()
        self.incidents = []  # merged: {"kind","signal","chain":[(name,file,line)],"count"}
        self.inventory = {}
        self.metas = []
        self.bodies = 0
        seen = set()
        incidents = collections.OrderedDict()
        for b in bodies:
            meta = b.get("_meta") or {}
            bid = meta.get("batch_id")
            if bid is not None:
                if bid in seen:
                    continue
                seen.add(bid)
            self.bodies += 1
            self.metas.append(meta)
            for f in b.get("functions", []):
                e = self.fns.setdefault(f["name"], {
                    "calls": 0, "errors": 0, "total_ms": 0.0, "self_ms": 0.0, "max_ms": 0.0,
                    "hist": collections.Counter(), "departments": set(), "weights": set(),
                    "file": None, "line": None, "locations": 0})
                e["calls"] += f.get("calls", 0)
                e["errors"] += f.get("errors", 0)
                e["total_ms"] += f.get("total_ms", 0.0)
                e["self_ms"] += f.get("self_ms", 0.0)
                e["max_ms"] = max(e["max_ms"], f.get("max_ms", 0.0))
                for bucket, count in f.get("hist", []):
                    e["hist"][bucket] += count
                e["departments"].add(f.get("department"))
                e["weights"].add(f.get("value_weight"))
                if "file" in f or "line" in f:
                    e["locations"] += 1
                    if e["file"] is None:
                        e["file"], e["line"] = f.get("file"), f.get("line")
            for ed in b.get("edges", []):
                self.edges[(ed["caller"], ed["callee"])] += ed["calls"]
            for inc in b.get("incidents", []):
                chain = tuple((c.get("name"), c.get("file"), c.get("line")) for c in inc["chain"])
                key = (inc["kind"], inc.get("signal", 0), chain)
                incidents[key] = incidents.get(key, 0) + inc["count"]
            for inv in b.get("inventory", []):
                self.inventory.setdefault(inv["name"], inv)
        self.incidents = [{"kind": k, "signal": s, "chain": list(c), "count": n}
                          for (k, s, c), n in incidents.items()]

    def counts(self, prefix=""):
        """{name: (calls, errors)} of the functions named under `prefix`."""
        return {n: (e["calls"], e["errors"]) for n, e in self.fns.items()
                if n.startswith(prefix) and (e["calls"] or e["errors"])}

    def incident_counts(self, kind=None):
        """{(kind, names of the chain): count}."""
        out = collections.Counter()
        for i in self.incidents:
            if kind is None or i["kind"] == kind:
                out[(i["kind"], tuple(c[0] for c in i["chain"]))] += i["count"]
        return dict(out)


class Case(unittest.TestCase):
    """Base for integration tests: skips when the runtime is not built, and
    gives each test its own spool folder and a receiver on demand."""

    maxDiff = None

    def setUp(self):
        if not runtime_built():
            self.skipTest("the runtime is not built (%s missing)" % LIB)
        self.tmp = tempfile.mkdtemp(prefix="t-", dir=SCRATCH)
        self.spool = os.path.join(self.tmp, "spool")
        os.makedirs(self.spool)
        self.receivers = []

    def tearDown(self):
        for r in self.receivers:
            r.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def receiver(self, plan=(), rule=None, **kw):
        r = Receiver(plan, rule, **kw)
        self.receivers.append(r)
        return r

    def env(self, receiver=None, **extra):
        # XDG_STATE_HOME: a default spool folder, if one is used, is ours too;
        # XDG_CACHE_HOME: each test starts with no symbol index on disk.
        base = {"CODENSM_API_KEY": API_KEY, "CODENSM_SPOOL_DIR": self.spool,
                "XDG_STATE_HOME": self.tmp, "XDG_CACHE_HOME": self.tmp}
        if receiver is not None:
            base["CODENSM_ENDPOINT"] = receiver.url if isinstance(receiver, Receiver) else receiver
        base.update(extra)
        return clean_env(**base)

    def spooled(self):
        return sorted(os.listdir(self.spool))

    def assert_ran(self, r, rc=0):
        self.assertEqual(r.returncode, rc, "exit status of the program; %r" % r)

    def assert_exact(self, totals, expected, prefix=""):
        """The functions under `prefix` got exactly these (calls, errors)."""
        self.assertEqual(totals.counts(prefix), expected,
                         "(calls, errors) per function summed over %d bodies; last run: %r"
                         % (totals.bodies, _last_run))


def sample_expect_shop(n):
    """{name: (calls, errors)} for `shop n` (see samples/shop/main.c)."""
    items = sum(i % 3 + 1 for i in range(n))
    return {
        "checkout.order.place_order": (n, 0),
        "checkout.cart.cart_total": (n, 0),
        "checkout.cart.cart_add_item": (items, 0),
        "checkout.coupons.coupon_apply": ((n + 3) // 4, 0),
        "payments.card.card_charge": (n, 0),
        "payments.card.card_authorize": (n, n // 50),
        "inventory.stock.stock_reserve": (items, 0),
        "inventory.stock.stock_reserved": (1, 0),
        "legacy.export.export_csv": (1, 0),
    }
