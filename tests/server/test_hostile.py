"""Hostile input against the ingest endpoint: each bad request gets its
status, and afterwards the server still answers and the stored data is
exactly what it was.  (test_ingest.py holds the contract's own 400/413
cases; these are the ones an attacker or a broken client adds.)"""
import json
import os
import socket
import threading
import time

from serverlib import ServerTest, fn, at

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TABLES = ["projects", "functions", "buckets", "hist", "names", "edges", "incidents", "batches", "usage"]


def raw(port, data, timeout=10, chunk=None):
    """Sends raw bytes (as much as the server takes) and returns the status
    line's code (None when the connection closed without an answer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            if chunk:
                for i in range(0, len(data), chunk):
                    s.sendall(data[i:i + chunk])
            else:
                s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: read what it said
        buf = b""
        try:
            while b"\r\n" not in buf:
                part = s.recv(4096)
                if not part:
                    break
                buf += part
        except (ConnectionResetError, socket.timeout):
            pass
        return int(buf.split()[1]) if buf.startswith(b"HTTP/1.") else None
    finally:
        s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class HostileInput(ServerTest):
    @classmethod
    def prepare(cls):
        cls.a = cls.srv.project("alpha")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        body = {"functions": [fn("checkout.pay", 10, 2, 30.5, hist=[[20, 8], [22, 2]])],
                "edges": [{"caller": "checkout.api", "callee": "checkout.pay", "calls": 10}],
                "incidents": [{"kind": "error", "signal": 0, "count": 2,
                               "chain": [{"name": "checkout.api"}, {"name": "checkout.pay"}]}],
                "_meta": at(30, batch_id="baseline-1")}
        status, _ = cls.srv.post(cls.a["ingest"], body)
        assert status == 200, status
        cls.baseline = cls.snapshot()

    @classmethod
    def snapshot(cls):
        return {t: sorted(map(repr, cls.srv.sql(f"SELECT * FROM {t}"))) for t in TABLES}

    def post(self, body, key=None, headers=None):
        return self.srv.post(self.a["ingest"] if key is None else key, body, headers)

    def assertAliveAndUnchanged(self):
        status, summary = self.srv.get(self.a["dashboard"], "alpha", "summary")
        self.assertEqual((status, summary["calls"], summary["errors"]), (200, 10, 2))
        self.assertEqual(self.snapshot(), self.baseline)
        self.assertIsNone(self.srv.proc.poll(), "the server exited")

    def test_truncated_json_is_400_at_every_cut(self):
        """a runtime payload cut after any byte is a 400, and nothing of it is stored"""
        with open(os.path.join(ROOT, "tests/contract/accepted/runtime-full.json"), "rb") as f:
            body = f.read().strip()
        cuts = sorted(set(range(0, len(body), max(1, len(body) // 150))) | {len(body) - 1})
        for cut in cuts:
            status, answer = self.post(body[:cut])
            self.assertEqual(status, 400, f"cut at byte {cut}: {answer}")
        self.assertAliveAndUnchanged()

    def test_wrong_types_in_every_field_are_400(self):
        """null, a boolean, an object, an array or a string where a field wants another type"""
        good = fn("x.wrong", 1, 0, 1.0)
        for field in ["name", "department", "value_weight", "calls", "errors", "total_ms",
                      "file", "line", "self_ms", "max_ms", "hist"]:
            for bad in [None, True, {}, [], "7"]:
                if bad == "7" and field in ("name", "department", "file"):
                    continue
                if bad == [] and field == "hist":
                    continue
                body = {"functions": [dict(good, **{field: bad})]}
                status, answer = self.post(body)
                self.assertEqual(status, 400, f"{field}={bad!r}: {answer}")
                self.assertIn(f"functions[0].{field}", answer["error"])
        for body in [b"", b"null", b"[]", b'"functions"', b"1", b"true", b"{}{}",
                     b'{"functions":{}}', b'{"functions":[1]}', b'{"functions":[],"functions":[]}',
                     b'{"edges":[{"caller":1}]}', b'{"incidents":[[]]}', b'{"_meta":[]}',
                     b'{"inventory":[{"name":null}]}', b"\xef\xbb\xbf{}"]:
            status, answer = self.post(body)
            self.assertEqual(status, 400, f"{body!r}: {answer}")
        self.assertAliveAndUnchanged()

    def test_huge_and_negative_numbers_are_400(self):
        """counts past 10^15 or 2^63, negative counts, 1e400, NaN and Infinity in any numeric field"""
        cases = [("calls", b"1000000000000001"), ("calls", b"9223372036854775808"),
                 ("calls", b"-1"), ("errors", b"-1"), ("calls", b"1e3"), ("total_ms", b"1e400"),
                 ("total_ms", b"1e16"), ("total_ms", b"-0.5"), ("value_weight", b"1000001"),
                 ("value_weight", b"NaN"), ("total_ms", b"Infinity"), ("max_ms", b"-Infinity"),
                 ("line", b"-3"), ("calls", b"99999999999999999999999999999")]
        for field, value in cases:
            e = dict(fn("x.num", 5, 1, 2.0))
            e[field] = "@@"
            body = json.dumps({"functions": [e]}).encode().replace(b'"@@"', value)
            status, answer = self.post(body)
            self.assertEqual(status, 400, f"{field}={value!r}: {answer}")
        for body in [{"functions": [fn("x.h", 1, hist=[[0, -1]])]},
                     {"functions": [fn("x.h", 1, hist=[[-1, 1]])]},
                     {"edges": [{"caller": "a", "callee": "b", "calls": -5}]},
                     {"incidents": [{"kind": "error", "count": -1, "chain": [{"name": "a"}]}]}]:
            status, answer = self.post(body)
            self.assertEqual(status, 400, f"{body}: {answer}")
        self.assertAliveAndUnchanged()

    def test_deep_nesting_is_400_not_a_crash(self):
        """100,000 nested arrays or objects, at the top and inside functions, closed or not: 400"""
        depth = 100000
        for body in [b"[" * depth + b"]" * depth,
                     b'{"functions":[' + b"[" * depth + b"]" * depth + b"]}",
                     b'{"functions":[' + b'{"":' * depth + b"1" + b"}" * depth + b"]}",
                     b'{"functions":' + b"[" * depth]:
            status, answer = self.post(body)
            self.assertEqual(status, 400, answer)
            self.assertIn("invalid json", answer["error"])
        self.assertAliveAndUnchanged()

    def test_invalid_utf8_anywhere_is_400(self):
        """a raw 0xff, an overlong encoding or a lone surrogate in any string, even an unknown key"""
        base = {"functions": [fn("x.utf", 1, file="a.c")],
                "edges": [{"caller": "a", "callee": "b", "calls": 1}],
                "incidents": [{"kind": "error", "chain": [{"name": "a"}]}],
                "_meta": {"batch_id": "utf-1"}}
        text = json.dumps(base).encode()
        for target in [b'"x.utf"', b'"engine"', b'"a.c"', b'"b"', b'"utf-1"']:
            for bad in [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\\ud800", b"\xf4\x90\x80\x80"]:
                body = text.replace(target, target[:-1] + bad + b'"', 1)
                status, answer = self.post(body)
                self.assertEqual(status, 400, f"{target!r} + {bad!r}: {answer}")
        status, _ = self.post(b'{"\xff":1,"functions":[]}')
        self.assertEqual(status, 400)
        status, _ = self.post(b'{"functions":[{"name":"a\\u0000b","department":"d",'
                              b'"value_weight":1,"calls":1,"errors":0,"total_ms":1}]}')
        self.assertEqual(status, 400)
        self.assertAliveAndUnchanged()

    def test_markup_and_sql_are_stored_verbatim_everywhere(self):
        """names, departments, edges and chains with HTML or SQL are data, byte for byte, in every view"""
        evil = "x'); DROP TABLE functions; -- <script>alert(1)</script>"
        dep = '"><img src=x onerror=alert(1)>'
        body = {"functions": [fn(evil, 3, 1, 3.0, department=dep)],
                "edges": [{"caller": evil, "callee": "%s%n%x", "calls": 2}],
                "incidents": [{"kind": "error", "chain": [{"name": "%s%n%x"}, {"name": evil}]}],
                "_meta": at(10, batch_id="'; DELETE FROM batches; --")}
        self.assertEqual(self.post(body)[0], 200)
        key = self.a["dashboard"]
        _, rows = self.srv.get(key, "alpha", "functions", q="drop table")
        self.assertEqual([(r["name"], r["department"]) for r in rows["rows"]], [(evil, dep)])
        _, graph = self.srv.get(key, "alpha", "graph", fn=evil)
        self.assertEqual(graph["edges"], [{"caller": evil, "callee": "%s%n%x", "calls": 2}])
        _, inc = self.srv.get(key, "alpha", "incidents")
        self.assertIn([{"name": "%s%n%x", "file": None, "line": None},
                       {"name": evil, "file": None, "line": None}],
                      [i["chain"] for i in inc["incidents"]])
        self.assertEqual(self.srv.sql("SELECT batch_id FROM batches WHERE batch_id LIKE '''%'"),
                         [("'; DELETE FROM batches; --",)])
        self.assertEqual(len(self.srv.sql("SELECT * FROM projects")), 1)
        # leave the baseline as it was for the other tests
        (fid,), = self.srv.sql("SELECT id FROM functions WHERE name = ?", evil)
        names = [r[0] for r in self.srv.sql("SELECT id FROM names WHERE name IN (?, '%s%n%x')", evil)]
        self.srv.write(("DELETE FROM buckets WHERE function = ?", (fid,)),
                       ("DELETE FROM hist WHERE function = ?", (fid,)),
                       ("DELETE FROM functions WHERE id = ?", (fid,)),
                       *[("DELETE FROM edges WHERE caller = ? OR callee = ?", (n, n)) for n in names],
                       *[("DELETE FROM names WHERE id = ?", (n,)) for n in names],
                       ("DELETE FROM incidents WHERE function = ?", (evil,)),
                       ("DELETE FROM batches WHERE batch_id != 'baseline-1'", ()),
                       ("UPDATE usage SET calls = calls - 3", ()))
        self.assertAliveAndUnchanged()

    def test_oversized_headers_are_431(self):
        """a 100 KB Authorization header, or 2,000 small headers, on ingest: 431, nothing stored"""
        body = json.dumps({"functions": [fn("x.hdr", 1)]}).encode()

        def status_of(request):
            # The server answers 431 and closes with the rest of the request
            # unread; the kernel's reset for those bytes can overtake the
            # answer on its way to us.  Such a try (no answer at all) is
            # made again; an answer must be 431.
            for _ in range(5):
                status = raw(self.srv.port, request)
                if status is not None:
                    return status
            return None
        head = b"POST /codensm/ingest HTTP/1.1\r\nHost: x\r\n"
        tail = f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        self.assertEqual(status_of(head + b"Authorization: Bearer " + b"k" * 100000 + b"\r\n" + tail),
                         431)
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(2000))
        self.assertEqual(status_of(head + f"Authorization: Bearer {self.a['ingest']}\r\n".encode()
                                   + many + tail), 431)
        self.assertAliveAndUnchanged()

    def test_10_mb_bodies_are_413_with_memory_bounded(self):
        """10 MB declared, 10 MB chunked and 5 MB declared bodies: 413, the server's memory grows < 32 MB"""
        pid = self.srv.proc.pid
        before = rss_kb(pid)
        auth = f"Authorization: Bearer {self.a['ingest']}\r\n".encode()
        big = b'{"functions":[' + b" " * (10 * 1024 * 1024) + b"]}"
        head = b"POST /codensm/ingest HTTP/1.1\r\nHost: x\r\n" + auth
        self.assertEqual(raw(self.srv.port, head + f"Content-Length: {len(big)}\r\n\r\n".encode()
                             + big, timeout=30), 413)
        chunked = b"".join(b"%x\r\n" % len(big[i:i + 65536]) + big[i:i + 65536] + b"\r\n"
                           for i in range(0, len(big), 65536)) + b"0\r\n\r\n"
        self.assertEqual(raw(self.srv.port, head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
                             timeout=30), 413)
        five = big[:5 * 1024 * 1024]
        self.assertEqual(raw(self.srv.port, head + f"Content-Length: {len(five)}\r\n\r\n".encode()
                             + five, timeout=30), 413)
        grown = rss_kb(pid) - before
        self.assertLess(grown, 32 * 1024, f"RSS grew by {grown} KB")
        self.assertAliveAndUnchanged()

    def test_slow_clients_are_cut_off_and_others_served(self):
        """a byte a second in the headers or in the body: others are served meanwhile, both are cut within 30 s"""
        auth = f"Authorization: Bearer {self.a['ingest']}\r\n".encode()
        body = json.dumps({"functions": [fn("x.slow", 1)]}).encode()
        slow_head = b"POST /codensm/ingest HTTP/1.1\r\nHost: x\r\n" + auth + b"X-Pad: " + b"a" * 200
        slow_body = (b"POST /codensm/ingest HTTP/1.1\r\nHost: x\r\n" + auth
                     + f"Content-Length: {len(body) + 200}\r\n\r\n".encode() + body)
        results = {}

        def trickle(name, data, fast_prefix):
            s = socket.create_connection(("127.0.0.1", self.srv.port))
            s.settimeout(1)
            t0 = time.time()
            s.sendall(data[:fast_prefix])
            i = fast_prefix
            try:
                while time.time() - t0 < 50:
                    s.send(data[i:i + 1] if i < len(data) else b" ")
                    i += 1
                    try:
                        if s.recv(100) == b"":
                            break
                    except socket.timeout:
                        pass
            except OSError:
                pass
            results[name] = time.time() - t0
            s.close()

        threads = [threading.Thread(target=trickle, args=("headers", slow_head, 10)),
                   threading.Thread(target=trickle, args=("body", slow_body, len(slow_body) - len(body)))]
        for t in threads:
            t.start()
        time.sleep(3)
        for _ in range(5):
            t0 = time.time()
            status, answer = self.srv.get(self.a["dashboard"], "alpha", "summary")
            self.assertEqual(status, 200)
            self.assertLess(time.time() - t0, 2, "a request waited behind the slow clients")
            time.sleep(1)
        for t in threads:
            t.join(60)
        self.assertEqual(set(results), {"headers", "body"})
        for name, took in results.items():
            self.assertLess(took, 40, f"the slow {name} client was held {took:.0f} s")
            self.assertGreater(took, 25, f"the slow {name} client was cut after {took:.0f} s only")
        self.assertAliveAndUnchanged()

    def test_many_idle_connections_do_not_block_others(self):
        """300 connections that send nothing: an ingest and a view are still answered at once"""
        idle = [socket.create_connection(("127.0.0.1", self.srv.port)) for _ in range(300)]
        try:
            t0 = time.time()
            status, _ = self.post(b'{"functions":[]}')
            self.assertEqual(status, 200)
            self.assertEqual(self.srv.get(self.a["dashboard"], "alpha", "summary")[0], 200)
            self.assertLess(time.time() - t0, 2)
        finally:
            for s in idle:
                s.close()
        self.assertAliveAndUnchanged()
