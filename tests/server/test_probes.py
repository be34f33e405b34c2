"""Probes on the server (docs/api.md "Probes", docs/payload.md "probes" and
"Answers"): the manage key, the endpoints and their status codes, the
checks of a new probe, renew and delete, the ingest answer's specs, the
per-process reports merged exactly (duplicates never counted twice), the
settings, and the automatic incident probe with its root-cause analysis."""
import itertools
import json
import os
import re
import shutil
import tempfile
import time
import unittest

from serverlib import Server, ServerTest, cli, fn, at, set_clock

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
READ_ONLY = ("this key is read-only: creating probes needs the project's manage key"
             " (cnsmm_...)")


BATCHES = itertools.count(1)


def iso_to_unix(s):
    import calendar
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000


class ProbeServer(ServerTest):
    @classmethod
    def prepare(cls):
        cls.p = cls.srv.project("shop")
        cls.q = cls.srv.project("other")
        cls.r = cls.srv.project("ids")

    def call(self, method, path, key, body=None, project="shop"):
        h = {"Authorization": f"Bearer {key}"} if key else {}
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        status, _, raw = self.srv.request(method, f"/api/projects/{project}/{path}", data, h)
        return status, json.loads(raw) if raw else None

    def add(self, body, key=None):
        return self.call("POST", "probes", key or self.p["manage"], body)

    def ingest(self, payload, key=None):
        payload.setdefault("functions", [])
        meta = payload.setdefault("_meta", {})
        meta.setdefault("batch_id", f"b-{next(BATCHES)}")
        return self.srv.post(key or self.p["ingest"], payload, probes=True)

    def report(self, entries, pid=1, host="h1", service="shop", end=None, batch=None):
        meta = {"service": service, "host": host, "pid": pid, "interval": [0, end or time.time()]}
        if batch:
            meta["batch_id"] = batch
        return self.ingest({"probes": entries, "_meta": meta})

    def show(self, pid, key=None):
        return self.call("GET", f"probes/{pid}", key or self.p["dashboard"])


class Keys(ProbeServer):
    def test_project_create_prints_a_manage_key_and_manage_key_replaces_it(self):
        """`project create` prints `manage key: cnsmm_...`; `project manage-key` makes a new one, the old one stops"""
        self.assertRegex(self.p["manage"], r"^cnsmm_[a-z2-7]{32}$")
        _, out, _ = cli(self.srv.db, "project", "manage-key", "other")
        new = re.fullmatch(r"manage key: (cnsmm_[a-z2-7]{32})\n", out).group(1)
        body = {"target": "x.y", "instrument": {"type": "incr"}}
        self.assertEqual(self.call("POST", "probes", self.q["manage"], body, "other"),
                         (401, {"error": "missing or unknown manage key"}))
        self.assertEqual(self.call("POST", "probes", new, body, "other")[0], 201)
        self.q["manage"] = new
        code, out, err = cli(self.srv.db, "project", "manage-key", "nosuch", check=False)
        self.assertEqual((code, out, err), (1, "", "codensm-server: no project 'nosuch'\n"))

    def test_who_may_read_and_write_probes(self):
        """reads: dashboard and manage keys; writes: manage key only (403 for the dashboard key, 401 else, 404 another project's)"""
        body = {"target": "shop.a", "instrument": {"type": "incr"}}
        for key in (self.p["dashboard"], self.p["manage"]):
            self.assertEqual(self.call("GET", "probes", key)[0], 200)
            self.assertEqual(self.call("GET", "settings", key), (200, {"auto_probes": True}))
            self.assertEqual(self.call("GET", "summary", key)[0], 200)   # the manage key reads every view
        for key in (None, self.p["ingest"], "cnsmm_" + "a" * 32):
            self.assertEqual(self.call("GET", "probes", key),
                             (401, {"error": "missing or unknown dashboard key"}), key)
            self.assertEqual(self.call("POST", "probes", key, body),
                             (401, {"error": "missing or unknown manage key"}), key)
        for method, path, b in [("POST", "probes", body), ("POST", "probes/x/renew", {}),
                                ("DELETE", "probes/x", None), ("PUT", "settings", {"auto_probes": False})]:
            self.assertEqual(self.call(method, path, self.p["dashboard"], b), (403, {"error": READ_ONLY}),
                             (method, path))
        self.assertEqual(self.call("POST", "probes", self.q["manage"], body),
                         (404, {"error": "project 'shop' not found"}))
        self.assertEqual(self.call("GET", "probes", self.q["dashboard"]),
                         (404, {"error": "project 'shop' not found"}))


class Endpoints(ProbeServer):
    def test_post_creates_a_probe_with_the_contract_fields(self):
        """201 PROBE: defaults filled in, lastmodified now (ISO-8601), expires_at, active, no processes"""
        before = time.time()
        status, p = self.add({"id": "instr-1", "target": "shop.cart.cart_sum",
                              "instrument": {"type": "hist", "name": "cart.latency"}, "lifespan": 5})
        self.assertEqual(status, 201, p)
        self.assertRegex(p["lastmodified"], ISO)
        lm = iso_to_unix(p["lastmodified"])
        self.assertTrue(before - 0.01 <= lm <= time.time() + 0.01, (before, lm))
        self.assertAlmostEqual(p["expires_at"], lm + 300, places=2)
        self.assertTrue(299 <= p["time_left_s"] <= 300.01, p["time_left_s"])
        del p["lastmodified"], p["expires_at"], p["time_left_s"]
        self.assertEqual(p, {"id": "instr-1", "target": "shop.cart.cart_sum",
                             "instrument": {"type": "hist", "name": "cart.latency", "value": "duration",
                                            "event": "return", "custom": {}},
                             "lifespan": 5.0, "state": "active", "auto": False, "incident_id": None,
                             "hits": 0, "processes": []})

    def test_ids_are_made_when_left_out_and_an_id_in_use_is_409(self):
        """p-1, p-2, ... skipping ids in use; 409 for an id in use, nothing changed"""
        body = {"target": "shop.ids", "instrument": {"type": "incr", "value": "caller"}}
        add = lambda b: self.call("POST", "probes", self.r["manage"], b, "ids")
        self.assertEqual(add({**body, "id": "p-2"})[0], 201)
        self.assertEqual(add(body)[1]["id"], "p-1")
        self.assertEqual(add(body)[1]["id"], "p-3")
        self.assertEqual(add({**body, "id": "p-2", "target": "shop.other"}),
                         (409, {"error": "probe id 'p-2' is in use: remove it or choose another"}))
        self.assertEqual(self.call("GET", "probes/p-2", self.r["dashboard"], None, "ids")[1]["target"], "shop.ids")

    def test_bad_probes_are_400_naming_the_field(self):
        """each malformed body: 400 with one line naming what was wrong; nothing stored"""
        ok = {"target": "shop.v", "instrument": {"type": "log"}}
        cases = [
            (b"{", "invalid json: string or '}' expected near end of file at line 1 column 1"),
            ([], "body: expected a json object"),
            ({**ok, "colour": 1}, "colour: unknown field"),
            ({**ok, "id": "a/b"}, "id: expected 1..64 of A-Z a-z 0-9 . _ -"),
            ({**ok, "id": "x" * 65}, "id: expected 1..64 of A-Z a-z 0-9 . _ -"),
            ({"instrument": {"type": "log"}}, "target: expected a function name or prefix of 1..512 bytes"),
            ({**ok, "target": ""}, "target: expected a function name or prefix of 1..512 bytes"),
            ({**ok, "target": "x" * 513}, "target: expected a function name or prefix of 1..512 bytes"),
            ({**ok, "lifespan": 0}, "lifespan: expected minutes in (0, 10080]"),
            ({**ok, "lifespan": 10081}, "lifespan: expected minutes in (0, 10080]"),
            ({**ok, "lifespan": "10"}, "lifespan: expected minutes in (0, 10080]"),
            ({"target": "x"}, "instrument: expected an object with a type"),
            ({"target": "x", "instrument": {}}, "instrument.type: missing (log, hist, incr, stack or a registered type)"),
            ({"target": "x", "instrument": {"type": "bad type"}},
             "instrument.type: expected log, hist, incr, stack or a registered type name (1..63 of A-Z a-z 0-9 . _ -)"),
            ({"target": "x", "instrument": {"type": "log", "size": 1}}, "instrument.size: unknown field"),
            ({"target": "x", "instrument": {"type": "log", "name": ""}}, "instrument.name: expected a string of 1..128 bytes"),
            ({"target": "x", "instrument": {"type": "log", "value": "args"}},
             "instrument.value: expected duration, caller, thread, error, chain or count"),
            ({"target": "x", "instrument": {"type": "hist", "value": "caller"}},
             "instrument.value: a hist probe cannot record 'caller'"),
            ({"target": "x", "instrument": {"type": "log", "event": "exit"}},
             "instrument.event: expected call, return or end"),
            ({"target": "x", "instrument": {"type": "hist", "event": "call"}},
             "instrument.event: a histogram needs event 'return' or 'end'"),
            ({"target": "x", "instrument": {"type": "log", "custom": []}}, "instrument.custom: expected an object"),
            ({"target": "x", "instrument": {"type": "log", "custom": {"when": 1}}}, "instrument.custom.when: unknown field"),
            ({"target": "x", "instrument": {"type": "log", "custom": {"min_duration_ms": -1}}},
             "instrument.custom.min_duration_ms: expected a number >= 0"),
            ({"target": "x", "instrument": {"type": "log", "custom": {"caller": ""}}},
             "instrument.custom.caller: expected a name prefix of 1..512 bytes"),
            ({"target": "x", "instrument": {"type": "log", "custom": {"errors_only": 1}}},
             "instrument.custom.errors_only: expected true or false"),
            ({"target": "x", "instrument": {"type": "log", "custom": {"sample": 0}}},
             "instrument.custom.sample: expected an integer >= 1"),
            ({"target": "x", "instrument": {"type": "log", "custom": {"max_hits": 1.5}}},
             "instrument.custom.max_hits: expected an integer >= 1"),
            ({"target": "x", "instrument": {"type": "incr", "custom": {"errors_only": True}}},
             "instrument.custom: min_duration_ms and errors_only need event 'return' or 'end'"),
        ]
        for body, msg in cases:
            self.assertEqual(self.add(body), (400, {"error": msg}), body)
        self.assertEqual(self.call("GET", "probes", self.p["dashboard"]), (200, {"probes": []}))
        # a plausible user type is accepted: programs register it
        status, p = self.add({"target": "x", "instrument": {"type": "tally"}})
        self.assertEqual((status, p["instrument"]["value"], p["instrument"]["event"]), (201, None, "call"))

    def test_unknown_ids_are_404_and_other_methods_405(self):
        """GET/DELETE/renew of an unknown id: 404; a wrong method: 405; a body over 64 kB: 413"""
        for method, path in [("GET", "probes/nope"), ("DELETE", "probes/nope"), ("POST", "probes/nope/renew")]:
            key = self.p["manage"]
            self.assertEqual(self.call(method, path, key, {} if method == "POST" else None),
                             (404, {"error": "no probe 'nope'"}), (method, path))
        self.assertEqual(self.call("PUT", "probes", self.p["manage"], {}),
                         (405, {"error": "method not allowed: use GET or POST"}))
        self.assertEqual(self.call("GET", "incidents/999/rca", self.p["dashboard"]),
                         (404, {"error": "no incident 999"}))
        status, _ = self.call("POST", "probes", self.p["manage"], b"x" * 70000)
        self.assertEqual(status, 413)

    def test_delete_removes_it_from_the_list_and_the_answer(self):
        """DELETE: 200 {"ok":true}; then 404, gone from GET probes and from the ingest answer"""
        self.assertEqual(self.add({"id": "gone", "target": "shop.g", "instrument": {"type": "incr"}})[0], 201)
        self.assertIn("gone", self.ingest({})[1]["probes"])
        self.assertEqual(self.call("DELETE", "probes/gone", self.p["manage"]), (200, {"ok": True}))
        self.assertEqual(self.show("gone"), (404, {"error": "no probe 'gone'"}))
        self.assertNotIn("gone", [p["id"] for p in self.call("GET", "probes", self.p["manage"])[1]["probes"]])
        self.assertNotIn("gone", self.ingest({})[1]["probes"])

    def test_renew_restarts_it_with_fresh_results(self):
        """renew: 200, a new lastmodified, the lifespan given, the reports of the old life gone"""
        _, p = self.add({"id": "rn", "target": "shop.r", "instrument": {"type": "incr"}})
        self.report([{"id": "rn", "status": "EMITTING", "hits": 7, "count": 7,
                      "expires_in_s": p["expires_at"] - time.time()}])
        self.assertEqual(self.show("rn")[1]["hits"], 7)
        time.sleep(0.01)
        status, r = self.call("POST", "probes/rn/renew", self.p["manage"], {"lifespan": 3})
        self.assertEqual((status, r["lifespan"], r["hits"], r["processes"]), (200, 3.0, 0, []))
        self.assertGreater(iso_to_unix(r["lastmodified"]), iso_to_unix(p["lastmodified"]))
        self.assertAlmostEqual(r["expires_at"], iso_to_unix(r["lastmodified"]) + 180, places=2)
        # a late report of the old life (its end is the old one) is not counted in the new
        self.report([{"id": "rn", "status": "EMITTING", "hits": 2, "count": 9,
                      "expires_in_s": p["expires_at"] - time.time()}])
        self.assertEqual(self.show("rn")[1]["hits"], 0)
        self.report([{"id": "rn", "status": "EMITTING", "hits": 1, "count": 1,
                      "expires_in_s": r["expires_at"] - time.time()}])
        got = self.show("rn")[1]
        self.assertEqual((got["hits"], got["results"]), (1, {"type": "incr", "count": 1}))
        self.assertEqual(self.call("POST", "probes/rn/renew", self.p["manage"], {"lifespan": 0}),
                         (400, {"error": "lifespan: expected minutes in (0, 10080]"}))
        self.assertEqual(self.call("POST", "probes/rn/renew", self.p["manage"])[0], 200)

    def test_settings_turn_the_automatic_probes_off_and_on(self):
        """PUT settings {"auto_probes":false} -> 200; a bad body is 400"""
        key = self.p["manage"]
        self.assertEqual(self.call("PUT", "settings", key, {"auto_probes": False}), (200, {"auto_probes": False}))
        self.assertEqual(self.call("GET", "settings", self.p["dashboard"]), (200, {"auto_probes": False}))
        self.assertEqual(self.call("PUT", "settings", key, {"auto_probes": "no"}),
                         (400, {"error": "auto_probes: expected true or false"}))
        self.assertEqual(self.call("PUT", "settings", key, {"auto": True}),
                         (400, {"error": "auto: unknown field"}))
        self.assertEqual(self.call("PUT", "settings", key, {"auto_probes": True}), (200, {"auto_probes": True}))


class Answers(ProbeServer):
    def test_every_2xx_answer_carries_the_active_specs(self):
        """applied and duplicate answers: probes = the active specs exactly as the runtime reads them"""
        _, a = self.add({"id": "a1", "target": "shop.cart", "instrument": {
            "type": "stack", "event": "end", "custom": {"errors_only": True}}})
        _, b = self.add({"id": "b1", "target": "shop.pay", "instrument": {"type": "hist"}, "lifespan": 0.01})
        want = {"a1": {"target": "shop.cart", "instrument": {"type": "stack", "event": "end",
                                                            "custom": {"errors_only": True}},
                       "lifespan": 10.0, "lastmodified": a["lastmodified"], "applied": {}},
                "b1": {"target": "shop.pay", "instrument": {"type": "hist"}, "lifespan": 0.01,
                       "lastmodified": b["lastmodified"], "applied": {}}}
        status, ans = self.ingest({"_meta": {"batch_id": "same"}})
        self.assertEqual((status, ans), (200, {"ok": True, "functions": 0, "probes": want}))
        status, ans = self.ingest({"_meta": {"batch_id": "same"}})
        self.assertEqual((status, ans), (200, {"ok": True, "functions": 0, "duplicate": True, "probes": want}))
        # b1 expires after 0.6 s: gone from the answer, listed as expired
        time.sleep(0.7)
        self.assertEqual(self.ingest({})[1]["probes"], {"a1": want["a1"]})
        listed = {p["id"]: p["state"] for p in self.call("GET", "probes", self.p["dashboard"])[1]["probes"]}
        self.assertEqual(listed, {"a1": "active", "b1": "expired"})
        # another project's answer has none of them
        self.assertEqual(self.ingest({}, key=self.q["ingest"])[1]["probes"], {})
        # refused bodies carry no probes
        self.assertEqual(self.srv.post(self.p["ingest"], {"functions": 3}),
                         (400, {"error": "functions: expected an array"}))


class Reports(ProbeServer):
    def setUp(self):
        self.ends = {}
        for pid, body in [("h", {"type": "hist"}), ("l", {"type": "log", "event": "end"}),
                          ("i", {"type": "incr", "value": "caller"}), ("s", {"type": "stack"}),
                          ("u", {"type": "tally"})]:
            status, p = self.add({"id": pid, "target": "shop.f", "instrument": body})
            if status == 409:
                self.call("DELETE", f"probes/{pid}", self.p["manage"])
                status, p = self.add({"id": pid, "target": "shop.f", "instrument": body})
            self.assertEqual(status, 201)
            self.ends[pid] = p["expires_at"]

    def left(self, pid):
        return self.ends[pid] - time.time()

    def test_results_merge_over_processes_and_hits_are_deltas(self):
        """two processes: hits summed over reports; hist/incr/stack the latest per process, added over processes"""
        e = lambda pid, **kw: {"id": pid, "status": "EMITTING", "expires_in_s": self.left(pid), **kw}
        self.report([e("h", hits=3, hist=[[20, 3]], count=3), e("i", hits=4, count=4, by={"a": 3, "b": 1}),
                     e("s", hits=2, stacks=[{"chain": ["m", "shop.f"], "count": 2}]), e("u", hits=5)], pid=1)
        self.report([e("h", hits=2, hist=[[20, 4], [30, 1]], count=5), e("i", hits=1, count=5, by={"a": 4, "b": 1}),
                     e("s", hits=1, stacks=[{"chain": ["m", "shop.f"], "count": 2}, {"chain": [None, "shop.f"], "count": 1}]),
                     e("u", hits=1)], pid=1)
        self.report([e("h", hits=1, hist=[[40, 1]], count=1), e("i", hits=2, count=2, by={"c": 2}),
                     e("s", hits=4, stacks=[{"chain": ["m", "shop.f"], "count": 4}], stacks_other=1), e("u", hits=2)],
                    pid=2, host="h2")
        h = self.show("h")[1]
        self.assertEqual((h["hits"], h["results"]["count"], h["results"]["hist"]), (6, 6, [[20, 4], [30, 1], [40, 1]]))
        self.assertEqual([(p["host"], p["pid"], p["status"], p["hits"]) for p in h["processes"]],
                         [("h1", 1, "EMITTING", 5), ("h2", 2, "EMITTING", 1)])
        for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
            self.assertIsInstance(h["results"][k], float)
        i = self.show("i")[1]
        self.assertEqual((i["hits"], i["results"]), (7, {"type": "incr", "count": 7, "by": [
            {"key": "a", "count": 4}, {"key": "c", "count": 2}, {"key": "b", "count": 1}]}))
        s = self.show("s")[1]
        self.assertEqual((s["hits"], s["results"]), (7, {"type": "stack", "stacks_other": 1, "stacks": [
            {"chain": ["m", "shop.f"], "count": 6}, {"chain": [None, "shop.f"], "count": 1}]}))
        self.assertEqual(self.show("u")[1]["results"], {"type": "tally", "count": 8})

    def test_log_records_are_kept_newest_first_and_bounded(self):
        """log: every record appended, newest first, at most 200; log_dropped summed"""
        now = time.time()
        for batch in range(3):
            recs = [{"t": now - 1000 + batch * 100 + k, "thread": 7, "caller": "shop.m", "duration_ms": 0.5,
                     "error": k % 2 == 1, "event": "end"} for k in range(90)]
            self.report([{"id": "l", "status": "EMITTING", "hits": 90, "log": recs, "log_dropped": 5,
                          "expires_in_s": self.left("l")}])
        r = self.show("l")[1]["results"]
        self.assertEqual((len(r["log"]), r["log_dropped"]), (200, 15))
        self.assertEqual(r["log"][0], {"t": now - 1000 + 289, "service": "shop", "host": "h1", "pid": 1,
                                        "thread": 7, "caller": "shop.m", "duration_ms": 0.5, "error": True,
                                        "event": "end"})
        self.assertEqual(r["log"][-1]["t"], now - 1000 + 70)
        self.assertEqual(self.show("l")[1]["hits"], 270)

    def test_a_duplicate_batch_counts_once_and_a_bad_entry_spoils_nothing(self):
        """the same batch id twice adds hits once; malformed entries and unknown ids are skipped, the rest applies"""
        entries = [{"id": "u", "status": "EMITTING", "hits": 3, "expires_in_s": self.left("u")}]
        self.assertEqual(self.report(entries, batch="dup-1")[0], 200)
        self.assertTrue(self.report(entries, batch="dup-1")[1]["duplicate"])
        self.assertEqual(self.show("u")[1]["hits"], 3)
        bad = [{"id": "u", "status": "WHATEVER", "hits": 100}, {"id": "u", "status": "EMITTING", "hits": -1},
               {"id": "u", "status": "EMITTING", "hits": 9, "log": "x"}, "u", {"status": "EMITTING", "hits": 1},
               {"id": "u", "status": "EMITTING", "hits": 9, "hist": [[80, 1]]},
               {"id": "nosuch", "status": "EMITTING", "hits": 50},
               {"id": "u", "status": "EMITTING", "hits": 2, "expires_in_s": self.left("u")},
               {"id": "h", "status": "ERROR", "message": "target 'shop.f' matches no function the process has called",
                "hits": 0}]
        status, ans = self.report(bad, pid=3)
        self.assertEqual((status, ans["ok"]), (200, True))
        self.assertEqual(self.show("u")[1]["hits"], 5)
        h = self.show("h")[1]
        self.assertEqual([(p["pid"], p["status"], p["message"], p["expires_in_s"]) for p in h["processes"]],
                         [(3, "ERROR", "target 'shop.f' matches no function the process has called", None)])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM probe_reports WHERE probe = 'nosuch'"), [(0,)])


class Incidents(ProbeServer):
    """The automatic probe pair and the three levels, from payloads whose
    times the test places (the real program is tests/integration's)."""

    def incident(self, fn_name, chain, ago=0, batch=None, **meta):
        t = time.time() - ago
        body = {"functions": [fn(fn_name, 1, 1)],
                "incidents": [{"kind": "error", "signal": 0, "count": 1, "first_seen": t, "last_seen": t,
                               "chain": [{"name": n} for n in chain]}],
                "_meta": {**at(ago), **meta}}
        if batch:
            body["_meta"]["batch_id"] = batch
        return self.ingest(body)

    def incident_id(self, fn_name):
        _, inc = self.srv.get(self.p["dashboard"], "shop", "incidents")
        return [i["id"] for i in inc["incidents"] if i["chain"][-1]["name"] == fn_name][0]

    def test_a_new_incident_arms_the_pair_once_per_function(self):
        """new incident -> auto-N (stack) and auto-N-log in that very answer; a second chain on it adds none"""
        status, ans = self.incident("pay.charge", ["api.handle", "pay.charge"])
        n = self.incident_id("pay.charge")
        spec = ans["probes"][f"auto-{n}"]
        self.assertEqual(spec["instrument"], {"type": "stack", "event": "end", "custom": {"errors_only": True}})
        self.assertEqual((spec["target"], spec["lifespan"]), ("pay.charge", 10.0))
        self.assertEqual(ans["probes"][f"auto-{n}-log"]["instrument"],
                         {"type": "log", "event": "end", "custom": {"errors_only": True}})
        p = self.show(f"auto-{n}")[1]
        self.assertEqual((p["auto"], p["incident_id"], p["state"]), (True, n, "active"))
        _, ans = self.incident("pay.charge", ["cron.run", "pay.charge"])
        autos = sorted(k for k in ans["probes"] if k.startswith("auto-"))
        self.assertEqual(autos, [f"auto-{n}", f"auto-{n}-log"])
        # the same incident again is not new
        self.assertEqual(sorted(k for k in self.incident("pay.charge", ["api.handle", "pay.charge"])[1]["probes"]
                                if k.startswith("auto-")), autos)

    def test_auto_probes_off_arms_nothing_and_level_2_says_off(self):
        """auto_probes false: a new incident arms nothing; the RCA's level 2 status is "off" """
        self.call("PUT", "settings", self.p["manage"], {"auto_probes": False})
        try:
            _, ans = self.incident("off.fn", ["off.fn"])
            n = self.incident_id("off.fn")
            self.assertEqual([k for k in ans["probes"] if k.startswith(f"auto-{n}")], [])
            _, rca = self.call("GET", f"incidents/{self.incident_id('off.fn')}/rca", self.p["dashboard"])
            l2 = rca["levels"][1]
            self.assertEqual((l2["probe_id"], l2["status"], l2["occurrences"]), (None, "off", 0))
        finally:
            self.call("PUT", "settings", self.p["manage"], {"auto_probes": True})

    def test_the_three_levels(self):
        """L1 the chain; L2 the pair's reports (occurrences, callers, threads, durations, chains); L3 build, caller, latency"""
        # an hour of history: build A, caller old.main, 40 calls of rca.fn at ~1 ms and its callee at ~1 ms
        hist_fast = [[40, 40]]          # bucket 40: ~1.05 ms
        hist_slow = [[44, 40]]          # bucket 44: ~4.2 ms
        self.ingest({"functions": [fn("rca.fn", 40, hist=hist_fast), fn("rca.sub", 40, hist=hist_fast)],
                     "edges": [{"caller": "old.main", "callee": "rca.fn", "calls": 40},
                               {"caller": "rca.fn", "callee": "rca.sub", "calls": 40}],
                     "_meta": {**at(1800), "service": "svc", "build_id": "aaaa"}})
        # the new build, a new caller, slower calls, and the first failure
        self.ingest({"functions": [fn("rca.fn", 40, hist=hist_slow), fn("rca.sub", 40, hist=hist_fast)],
                     "edges": [{"caller": "new.main", "callee": "rca.fn", "calls": 40},
                               {"caller": "rca.fn", "callee": "rca.sub", "calls": 40}],
                     "_meta": {**at(30), "service": "svc", "build_id": "bbbb"}})
        _, ans = self.incident("rca.fn", ["new.main", "rca.fn"], ago=60, service="svc", build_id="bbbb")
        n = self.incident_id("rca.fn")
        left = lambda pid: self.show(pid)[1]["expires_at"] - time.time()
        self.report([{"id": f"auto-{n}", "status": "EMITTING", "hits": 3, "expires_in_s": left(f"auto-{n}"),
                      "stacks": [{"chain": ["new.main", "rca.fn"], "count": 2}, {"chain": ["old.main", "rca.fn"], "count": 1}]},
                     {"id": f"auto-{n}-log", "status": "EMITTING", "hits": 3, "expires_in_s": left(f"auto-{n}-log"),
                      "log": [{"t": time.time() - k, "thread": 10 + k % 2, "caller": "new.main", "duration_ms": float(k + 1),
                               "error": True, "event": "end"} for k in range(3)]}], service="svc")
        status, rca = self.call("GET", f"incidents/{n}/rca", self.p["dashboard"])
        self.assertEqual(status, 200, rca)
        self.assertEqual((rca["incident"]["id"], rca["incident"]["count"]), (n, 1))
        l1, l2, l3 = rca["levels"]
        self.assertEqual(l1, {"level": 1, "title": "The failing chain", "chain": [
            {"name": "new.main", "file": None, "line": None}, {"name": "rca.fn", "file": None, "line": None}]})
        self.assertEqual({k: l2[k] for k in ("level", "probe_id", "status", "occurrences", "callers", "threads",
                                             "durations", "chains")},
                         {"level": 2, "probe_id": f"auto-{n}", "status": "EMITTING", "occurrences": 3,
                          "callers": [{"name": "new.main", "count": 2}, {"name": "old.main", "count": 1}],
                          "threads": 2, "durations": {"p50_ms": 2.0, "p95_ms": 3.0, "max_ms": 3.0},
                          "chains": [{"chain": ["new.main", "rca.fn"], "count": 2},
                                     {"chain": ["old.main", "rca.fn"], "count": 1}]})
        self.assertEqual(len(l2["log"]), 3)
        self.assertEqual((l3["level"], l3["new_build"]["service"], l3["new_build"]["build_id"]), (3, "svc", "bbbb"))
        self.assertEqual([(c["name"], c["calls"]) for c in l3["new_callers"]], [("new.main", 40)])
        self.assertEqual([s["name"] for s in l3["latency_shifts"]], ["rca.fn"])
        s = l3["latency_shifts"][0]
        self.assertEqual((s["before_calls"], s["after_calls"]), (40, 40))
        self.assertAlmostEqual(s["ratio"], s["after_p95_ms"] / s["before_p95_ms"])
        self.assertGreaterEqual(s["ratio"], 1.5)


class Retention(unittest.TestCase):
    """Probes are pruned with the rest (docs/api.md "Retention"): 32 days
    after they end, with their reports and log; builds 32 days after they
    were last seen."""

    def test_probes_and_builds_are_pruned_32_days_after_they_end(self):
        """on a clock moved 33 days: the old probe, its report and log, the old build are gone; a newer probe stays"""
        tmp = tempfile.mkdtemp(prefix="codensm-probes-ret-")
        clock = os.path.join(tmp, "clock")
        day = 86400
        t0 = 1_800_000_000
        try:
            set_clock(clock, t0)
            srv = Server(tmp, env={"CODENSM_TEST_CLOCK": clock})
            keys = srv.project("ret")
            srv.start()
            hdr = {"Authorization": f"Bearer {keys['manage']}"}
            for pid in ("old", "new"):
                if pid == "new":
                    set_clock(clock, t0 + 2 * day)
                status, _, _ = srv.request("POST", "/api/projects/ret/probes", json.dumps(
                    {"id": pid, "target": "r.f", "instrument": {"type": "log"}}).encode(), hdr)
                self.assertEqual(status, 201)
            end = t0 + 2 * day + 1
            rec = {"t": end, "thread": 1, "caller": None, "duration_ms": 1.0, "error": False, "event": "return"}
            self.assertEqual(srv.post(keys["ingest"], {"functions": [], "_meta": {
                "service": "s", "host": "h", "pid": 1, "build_id": "b1", "interval": [end - 1, end]},
                "probes": [{"id": "old", "status": "EXPIRED", "hits": 1, "log": [rec], "expires_in_s": 0},
                           {"id": "new", "status": "EMITTING", "hits": 1, "log": [rec],
                            "expires_in_s": 599}]})[0], 200)
            count = lambda: [srv.sql(f"SELECT COUNT(*) FROM {t}")[0][0]
                             for t in ("probes", "probe_reports", "probe_log", "builds")]
            self.assertEqual(count(), [2, 2, 2, 1])
            self.assertEqual(srv.stop(), 0)
            # 32 days after "old" ended (t0 + 10 min) but not after "new" did, nor the build's last sight
            with open(clock, "w") as f:
                f.write(str(t0 + 600 + 32 * day + 3600))
            srv.start()
            self.assertEqual(srv.sql("SELECT id FROM probes"), [("new",)])
            self.assertEqual(count(), [1, 1, 1, 1])
            self.assertEqual(srv.stop(), 0)
            with open(clock, "w") as f:
                f.write(str(end + 32 * day + 700))
            srv.start()
            self.assertEqual(count(), [0, 0, 0, 0])
            self.assertEqual(srv.stop(), 0)
            with open(os.path.join(tmp, "server.log")) as f:
                self.assertIn("probes and builds from before", f.read())
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
