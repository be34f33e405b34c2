"""The ingest contract (docs/payload.md): every answer, field by field."""
import json
import shutil
import subprocess
import unittest

from serverlib import ServerTest, fn, at


class IngestAnswers(ServerTest):
    @classmethod
    def prepare(cls):
        cls.a = cls.srv.project("alpha")
        cls.b = cls.srv.project("beta")

    def post(self, payload, key=None):
        return self.srv.post(self.a["ingest"] if key is None else key, payload)

    def fn_row(self, name, project="alpha"):
        rows = self.srv.sql("SELECT f.department, f.value_weight, f.file, f.line, f.calls_total,"
                            " f.in_inventory FROM functions f JOIN projects p ON p.id = f.project"
                            " WHERE p.name = ? AND f.name = ?", project, name)
        return rows[0] if rows else None

    def test_seed_payload_is_accepted(self):
        """the seed's exact example answers 200 with the number of functions"""
        got = self.post({"functions": [{"name": "checkout.apply_coupon", "department": "engine",
                                        "value_weight": 9, "calls": 1240, "errors": 3,
                                        "total_ms": 47000, "file": "checkout/coupons.py",
                                        "line": 42}]})
        self.assertEqual(got, (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.fn_row("checkout.apply_coupon"),
                         ("engine", 9.0, "checkout/coupons.py", 42, 1240, 0))

    def test_plain_curl_with_seed_fields(self):
        """a payload posted by plain curl (form content type, no client) is accepted"""
        curl = shutil.which("curl")
        if not curl:
            self.skipTest("curl is not installed")
        body = json.dumps({"functions": [fn("curl.only", 5, 1, 50, "ops", 2)]})
        p = subprocess.run([curl, "-s", "-w", "\n%{http_code}", "-X", "POST",
                            f"http://127.0.0.1:{self.srv.port}/codensm/ingest",
                            "-H", f"Authorization: Bearer {self.a['ingest']}", "-d", body],
                           capture_output=True, text=True, timeout=30)
        text, code = p.stdout.rsplit("\n", 1)
        self.assertEqual((code, json.loads(text)), ("200", {"ok": True, "functions": 1}))
        self.assertEqual(self.fn_row("curl.only"), ("ops", 2.0, None, None, 5, 0))

    def test_missing_key_is_401(self):
        """no Authorization header: 401 missing or unknown ingest key"""
        self.assertEqual(self.srv.post(None, {"functions": []}),
                         (401, {"error": "missing or unknown ingest key"}))

    def test_wrong_key_is_401(self):
        """a made-up key and a dashboard key are both refused for ingest"""
        for key in ("cnsm_" + "a" * 32, self.a["dashboard"], "", "Basic x"):
            self.assertEqual(self.srv.post(key, {"functions": []}),
                             (401, {"error": "missing or unknown ingest key"}), key)

    def test_each_key_writes_its_own_project(self):
        """beta's ingest key writes beta's functions, never alpha's"""
        self.assertEqual(self.post({"functions": [fn("only.in.beta", 1)]}, self.b["ingest"])[0], 200)
        self.assertIsNone(self.fn_row("only.in.beta", "alpha"))
        self.assertIsNotNone(self.fn_row("only.in.beta", "beta"))

    def test_malformed_json_is_400(self):
        """a body that is not JSON is a 400 naming the parse error"""
        status, body = self.post(b'{"functions": [')
        self.assertEqual(status, 400)
        self.assertTrue(body["error"].startswith("invalid json: "), body)

    def test_wrong_types_name_the_field(self):
        """every wrong field is a 400 that names it by its path"""
        cases = [
            ({"functions": {}}, "functions: expected an array"),
            ([], "body: expected a json object"),
            ({"functions": [1]}, "functions[0]: expected an object"),
            ({"functions": [fn("a", 1), fn("b", -1)]}, "functions[1].calls: expected a non-negative integer"),
            ({"functions": [fn("a", 1.5)]}, "functions[0].calls: expected a non-negative integer"),
            ({"functions": [fn("a", "3")]}, "functions[0].calls: expected a non-negative integer"),
            ({"functions": [fn("a", 10**16)]}, "functions[0].calls: too large (at most 10^15)"),
            ({"functions": [fn("a", 1, -2)]}, "functions[0].errors: expected a non-negative integer"),
            ({"functions": [fn("a", 3, 4)]}, "functions[0].errors: greater than calls"),
            ({"functions": [fn("a", 3, estimated_calls=4)]}, "functions[0].estimated_calls: greater than calls"),
            ({"functions": [fn("a", 3, estimated_calls=-1)]},
             "functions[0].estimated_calls: expected a non-negative integer"),
            ({"functions": [fn("a", 3, estimated_calls=1.5)]},
             "functions[0].estimated_calls: expected a non-negative integer"),
            ({"functions": [fn("a", 1, total_ms=-1)]}, "functions[0].total_ms: expected a non-negative number"),
            ({"functions": [fn("a", 1, total_ms="1")]}, "functions[0].total_ms: expected a non-negative number"),
            ({"functions": [fn("a", 1, total_ms=1e300)]}, "functions[0].total_ms: too large (at most 1e+15)"),
            ({"functions": [fn("a", 1, weight=-1)]}, "functions[0].value_weight: expected a non-negative number"),
            ({"functions": [fn("", 1)]}, "functions[0].name: expected a string of 1..512 bytes"),
            ({"functions": [fn("x" * 513, 1)]}, "functions[0].name: expected a string of 1..512 bytes"),
            ({"functions": [fn(7, 1)]}, "functions[0].name: expected a string of 1..512 bytes"),
            ({"functions": [{"name": "a", "department": "d", "value_weight": 1, "errors": 0,
                             "total_ms": 1}]}, "functions[0].calls: missing"),
            ({"functions": [fn("a", 1, department="")]}, "functions[0].department: expected a string of 1..128 bytes"),
            ({"functions": [fn("a", 1, file=3)]}, "functions[0].file: expected a string of 0..4096 bytes"),
            ({"functions": [fn("a", 1, line=-1)]}, "functions[0].line: expected a non-negative integer"),
            ({"functions": [fn("a", 1, self_ms=-1)]}, "functions[0].self_ms: expected a non-negative number"),
            ({"functions": [fn("a", 1, max_ms="x")]}, "functions[0].max_ms: expected a non-negative number"),
            ({"functions": [fn("a", 1, hist=[[80, 1]])]}, "functions[0].hist[0]: expected [bucket, count] with bucket 0..79"),
            ({"functions": [fn("a", 1, hist=[[3, -1]])]}, "functions[0].hist[0][1]: expected a non-negative integer"),
            ({"functions": [fn("a", 1, hist={})]}, "functions[0].hist: expected an array of [bucket, count]"),
            ({"edges": [{"caller": "a", "callee": "b", "calls": -1}]}, "edges[0].calls: expected a non-negative integer"),
            ({"edges": [{"caller": "a", "calls": 1}]}, "edges[0].callee: missing"),
            ({"inventory": [{"department": "x"}]}, "inventory[0].name: missing"),
            ({"incidents": [{"kind": "boom", "chain": [{"name": "a"}]}]},
             'incidents[0].kind: expected "error", "exception" or "signal"'),
            ({"incidents": [{"kind": "error", "chain": []}]}, "incidents[0].chain: expected an array of 1..64 frames"),
            ({"incidents": [{"kind": "error", "chain": [{"name": ""}]}]},
             "incidents[0].chain[0].name: expected a string of 1..512 bytes"),
            ({"_meta": []}, "_meta: expected an object"),
            ({"_meta": {"batch_id": 5}}, "_meta.batch_id: expected a string of 1..128 bytes"),
        ]
        for payload, error in cases:
            self.assertEqual(self.post(payload), (400, {"error": error}), payload if len(str(payload)) < 200 else error)

    def test_non_finite_and_huge_numbers_are_400(self):
        """NaN, Infinity and numbers past a double are refused as JSON"""
        for raw in (b'{"functions":[{"name":"a","department":"d","value_weight":NaN,"calls":1,"errors":0,"total_ms":1}]}',
                    b'{"functions":[{"name":"a","department":"d","value_weight":1,"calls":1,"errors":0,"total_ms":Infinity}]}',
                    b'{"functions":[{"name":"a","department":"d","value_weight":1,"calls":1,"errors":0,"total_ms":1e999}]}',
                    b'{"functions":[{"name":"a","department":"d","value_weight":1,"calls":99999999999999999999,"errors":0,"total_ms":1}]}'):
            status, body = self.post(raw)
            self.assertEqual(status, 400, raw)
            self.assertTrue(body["error"].startswith("invalid json"), body)

    def test_invalid_utf8_is_400(self):
        """a name that is not valid UTF-8 (raw byte or lone surrogate) is refused"""
        for raw in (b'{"functions":[{"name":"a\xff","department":"d","value_weight":1,"calls":1,"errors":0,"total_ms":1}]}',
                    b'{"functions":[{"name":"a\\ud800","department":"d","value_weight":1,"calls":1,"errors":0,"total_ms":1}]}',
                    b'{"functions":[{"name":"a\\u0000b","department":"d","value_weight":1,"calls":1,"errors":0,"total_ms":1}]}'):
            status, body = self.post(raw)
            self.assertEqual(status, 400, raw)
            self.assertTrue(body["error"].startswith("invalid json"), body)

    def test_a_parse_error_inside_a_multibyte_character_still_has_a_body(self):
        """jansson quotes broken JSON up to the error, cutting a multi-byte character: the 400 still carries a JSON error"""
        raw = '{"functions":[{"name":"\u00f1an\\\u00fa.gr\u00f6\u00dfe","errors":0}]}'.encode()
        status, body = self.post(raw)
        self.assertEqual(status, 400, raw)
        self.assertTrue(body["error"].startswith("invalid json: invalid escape"), body)
        self.assertIn("?", body["error"], "the cut character is shown as '?'")

    def test_name_of_512_bytes_of_utf8_is_accepted(self):
        """a 512-byte name in multi-byte UTF-8 is stored whole"""
        name = "é" * 256
        self.assertEqual(len(name.encode()), 512)
        self.assertEqual(self.post({"functions": [fn(name, 1)]}), (200, {"ok": True, "functions": 1}))
        self.assertIsNotNone(self.fn_row(name))

    def test_body_over_512_kb_is_413(self):
        """a body of 512 KB + 1 byte is 413; exactly 512 KB is read"""
        pad = b" " * (512 * 1024 - len(b'{"functions":[]}'))
        self.assertEqual(self.post(b'{"functions":[]}' + pad), (200, {"ok": True, "functions": 0}))
        self.assertEqual(self.post(b'{"functions":[]}' + pad + b" "),
                         (413, {"error": "payload too large: body over 524288 bytes"}))

    def test_huge_declared_body_is_413_without_reading(self):
        """a declared 100 MB body is answered 413 before it is sent"""
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        c.putrequest("POST", "/codensm/ingest")
        c.putheader("Authorization", f"Bearer {self.a['ingest']}")
        c.putheader("Content-Length", str(100 * 1024 * 1024))
        c.putheader("Expect", "100-continue")
        c.endheaders()
        r = c.getresponse()
        self.assertEqual((r.status, json.loads(r.read())),
                         (413, {"error": "payload too large: body over 524288 bytes"}))
        c.close()

    def test_2001_functions_is_413(self):
        """2,000 functions are accepted, 2,001 are 413"""
        ok = {"functions": [fn(f"many.f{i}", 0) for i in range(2000)]}
        self.assertEqual(self.post(ok), (200, {"ok": True, "functions": 2000}))
        over = {"functions": [fn(f"many.f{i}", 0) for i in range(2001)]}
        self.assertEqual(self.post(over),
                         (413, {"error": "payload too large: 2001 functions (at most 2000)"}))

    def test_unknown_fields_and_dropped_are_ignored(self):
        """unknown fields anywhere and _meta.dropped change nothing"""
        payload = {"functions": [fn("unknown.fields", 4, 1, 8, future={"x": [1]})],
                   "future": [{"name": "x", "nodes": []}], "something": 1,
                   "_meta": {"dropped": 12345, "sdk": "py", "new": True}}
        self.assertEqual(self.post(payload), (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.srv.sql("SELECT SUM(b.calls), SUM(b.errors) FROM buckets b JOIN functions f"
                                      " ON f.id = b.function WHERE f.name = 'unknown.fields'"), [(4, 1)])

    def test_file_and_line_are_set_if_empty(self):
        """the first file/line a server sees wins; later ones are ignored"""
        self.post({"functions": [fn("setonce.f", 1)]})
        self.assertEqual(self.fn_row("setonce.f")[2:4], (None, None))
        self.post({"functions": [fn("setonce.f", 1, file="a.c", line=10)]})
        self.post({"functions": [fn("setonce.f", 1, file="b.c", line=20)]})
        self.assertEqual(self.fn_row("setonce.f")[2:5], ("a.c", 10, 3))

    def test_batch_id_is_applied_once(self):
        """a batch id seen before answers 200 duplicate and adds nothing"""
        payload = {"functions": [fn("dedup.f", 7, 2)], "_meta": {"batch_id": "b-1"}}
        self.assertEqual(self.post(payload), (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.post(payload), (200, {"ok": True, "functions": 1, "duplicate": True}))
        self.assertEqual(self.fn_row("dedup.f")[4], 7)
        # the same id in another project is another batch
        self.assertEqual(self.post(payload, self.b["ingest"]), (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.fn_row("dedup.f", "beta")[4], 7)

    def test_untrusted_names_are_stored_verbatim(self):
        """HTML and SQL in names and files are data, stored byte for byte"""
        names = ["<img src=x onerror=alert(1)>", "x'); DROP TABLE functions; --", 'q"uote\\back\nline']
        self.assertEqual(self.post({"functions": [fn(n, 1, department=n[:100], file=n) for n in names]})[0], 200)
        for n in names:
            self.assertEqual(self.fn_row(n)[0], n[:100])
            self.assertEqual(self.fn_row(n)[2], n)
        self.assertEqual(self.srv.tables().count("functions"), 1)

    def test_get_on_ingest_is_405(self):
        """ingest takes POST only"""
        status, _, data = self.srv.request("GET", "/codensm/ingest")
        self.assertEqual((status, json.loads(data)), (405, {"error": "method not allowed: use POST"}))

    def test_runtime_fields_are_stored(self):
        """self_ms, max_ms, hist, edges, incidents and inventory land in their tables"""
        payload = {
            "functions": [fn("rt.a", 10, 1, 100, self_ms=40, max_ms=30, hist=[[40, 6], [42, 4]])],
            "edges": [{"caller": "rt.a", "callee": "rt.b", "calls": 12}],
            "incidents": [{"kind": "error", "signal": 0, "count": 2, "first_seen": 1795000000.5,
                           "last_seen": 1795000003.1,
                           "chain": [{"name": "rt.a", "file": "a.c", "line": 10}, {"name": "rt.b"}]}],
            "inventory": [{"name": "rt.never", "department": "legacy", "value_weight": 1,
                           "file": "legacy.c", "line": 5}],
            "_meta": {"batch_id": "rt-1", "hist": "log2x2-ns", "dropped": 0}}
        self.assertEqual(self.post(payload), (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.srv.sql("SELECT b.self_ms, b.max_ms FROM buckets b JOIN functions f"
                                      " ON f.id = b.function WHERE f.name = 'rt.a'"), [(40.0, 30.0)])
        self.assertEqual(self.srv.sql("SELECT h.b, h.count FROM hist h JOIN functions f ON f.id = h.function"
                                      " WHERE f.name = 'rt.a' ORDER BY h.b"), [(40, 6), (42, 4)])
        self.assertEqual(self.srv.sql("SELECT c.name, d.name, e.calls FROM edges e JOIN names c ON c.id = e.caller"
                                      " JOIN names d ON d.id = e.callee WHERE c.name = 'rt.a'"),
                         [("rt.a", "rt.b", 12)])
        self.assertEqual(self.srv.sql("SELECT kind, count, function, first_seen, last_seen FROM incidents"
                                      " WHERE function = 'rt.b'"), [("error", 2, "rt.b", 1795000000.5, 1795000003.1)])
        self.assertEqual(self.fn_row("rt.never"), ("legacy", 1.0, "legacy.c", 5, 0, 1))
        # the same chain again is counted, not repeated
        payload["_meta"]["batch_id"] = "rt-2"
        self.post(payload)
        self.assertEqual(self.srv.sql("SELECT COUNT(*), SUM(count) FROM incidents WHERE function = 'rt.b'"),
                         [(1, 4)])


if __name__ == "__main__":
    unittest.main()
