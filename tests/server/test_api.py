"""The dashboard's JSON API (docs/api.md): every view's numbers, computed
by hand from one known data set, plus pagination, sorting, filtering and
who may see what."""
import json
import time
import unittest

from serverlib import ServerTest, fn, at

NOW = [  # one payload, so that these calls share one 60-second bucket
    fn("pay.charge", 100, 10, 500, "payments", 9, file="pay.c", line=31, hist=[[40, 100]]),
    fn("pay.refund", 50, 0, 100, "payments", 2, hist=[[42, 50]], estimated_calls=40),
    fn("cart.total", 200, 0, 200, "checkout", 1, file="cart.c", line=3),
]
EARLIER = [  # 20 minutes ago: out of the "last 15 minutes" of the states
    fn("rare.fn", 3, 0, 3, "checkout", 1),
    fn("idle.fn", 50, 0, 50, "checkout", 1),
]
NSM = 9 * 90 + 2 * 50 + 200 + 3 + 50   # 1163


def ms(ns):
    return ns / 1e6


class Api(ServerTest):
    @classmethod
    def prepare(cls):
        cls.acme = cls.srv.project("acme")
        cls.other = cls.srv.project("other")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        key = cls.acme["ingest"]
        t = time.time()
        now = {"functions": NOW,
               "edges": [{"caller": "cart.total", "callee": "pay.charge", "calls": 80},
                         {"caller": "pay.charge", "callee": "pay.refund", "calls": 5},
                         {"caller": "other.x", "callee": "pay.charge", "calls": 3}],
               "incidents": [{"kind": "error", "signal": 0, "count": 2, "first_seen": t - 9,
                              "last_seen": t - 5,
                              "chain": [{"name": "cart.total", "file": "cart.c", "line": 3},
                                        {"name": "pay.charge", "file": "pay.c", "line": 31}]}],
               "inventory": [{"name": "legacy.export", "department": "checkout", "value_weight": 1,
                              "file": "legacy.c", "line": 5}]}
        for payload in (now, {"functions": EARLIER, "_meta": at(20 * 60)}):
            status, body = cls.srv.post(key, payload)
            assert status == 200, body
        cls.srv.post(cls.other["ingest"], {"functions": [fn("<img src=x onerror=alert(1)>", 1)]})

    def get(self, view, **params):
        status, body = self.srv.get(self.acme["dashboard"], "acme", view, **params)
        self.assertEqual(status, 200, body)
        return body

    def names(self, **params):
        body = self.get("functions", **params)
        return body["total"], [r["name"] for r in body["rows"]]

    # ---- summary, departments ------------------------------------------------

    def test_summary(self):
        """NSM is the sum of value_weight x (calls - errors); the trend holds the same calls"""
        for window, points in (("1h", 61), ("24h", 97)):
            s = self.get("summary", window=window)
            trend = s.pop("trend")
            self.assertEqual(s, {"window": window, "nsm": NSM, "calls": 403, "errors": 10,
                                 "functions": 6, "departments": 2})
            self.assertEqual(len(trend), points)
            self.assertEqual((sum(p["calls"] for p in trend), sum(p["errors"] for p in trend),
                              sum(p["nsm"] for p in trend)), (403, 10, NSM))
        self.assertEqual(self.get("summary")["window"], "24h")

    def test_departments(self):
        """departments: calls, reliability, p95, NSM share, availability and OEE"""
        d = self.get("departments")["departments"]
        self.assertEqual([x["department"] for x in d], ["payments", "checkout"])
        pay, shop = d
        self.assertEqual(list(pay), ["department", "functions", "calls", "errors", "reliability",
                                     "p95_ms", "nsm", "share", "availability", "performance", "oee"])
        self.assertEqual((pay["functions"], pay["calls"], pay["errors"], pay["nsm"]), (2, 150, 10, 910))
        self.assertAlmostEqual(pay["reliability"], 1 - 10 / 150)
        self.assertAlmostEqual(pay["share"], 910 / NSM)
        # merged {40: 100, 42: 50}: rank 142.5 is at 0.85 of bucket 42 [2^21, 1.5 * 2^21)
        self.assertAlmostEqual(pay["p95_ms"], ms(2097152 + 0.85 * 1048576), places=9)
        self.assertEqual((pay["availability"], pay["performance"]), (1, 1))
        self.assertAlmostEqual(pay["oee"], 1 - 10 / 150)
        self.assertEqual((shop["functions"], shop["calls"], shop["errors"], shop["nsm"], shop["p95_ms"]),
                         (4, 253, 0, 253, None))
        self.assertEqual((shop["reliability"], shop["availability"], shop["performance"], shop["oee"]),
                         (1, 0.75, 1, 0.75))
        self.assertAlmostEqual(shop["share"], 253 / NSM)

    # ---- functions -----------------------------------------------------------------

    def test_function_row(self):
        """a function's row carries every field of docs/api.md with exact values"""
        rows = self.get("functions", q="pay.charge")["rows"]
        self.assertEqual(len(rows), 1)
        r = rows[0]
        self.assertEqual(list(r), ["name", "department", "value_weight", "calls", "errors", "error_rate",
                                   "p50_ms", "p95_ms", "max_ms", "total_ms", "self_ms", "nsm", "share",
                                   "file", "line", "first_seen", "last_seen", "state", "estimated_calls",
                                   "decisions", "loops", "returns", "nodes_count", "lines", "has_tests"])
        # no flow (CODENSM_MODE=names): the complexity columns are null
        self.assertEqual([r[k] for k in ("decisions", "loops", "returns", "nodes_count", "lines", "has_tests")],
                         [None] * 6)
        self.assertEqual({k: r[k] for k in ("name", "department", "value_weight", "calls", "errors",
                                           "error_rate", "max_ms", "total_ms", "self_ms", "nsm",
                                           "file", "line", "state", "estimated_calls")},
                         {"name": "pay.charge", "department": "payments", "value_weight": 9, "calls": 100,
                          "errors": 10, "error_rate": 0.1, "max_ms": 5, "total_ms": 500, "self_ms": 500,
                          "nsm": 810, "file": "pay.c", "line": 31, "state": "failing",
                          "estimated_calls": 0})
        self.assertAlmostEqual(r["share"], 810 / NSM)
        self.assertAlmostEqual(r["p50_ms"], ms(1048576 + 0.5 * 524288), places=9)
        self.assertAlmostEqual(r["p95_ms"], ms(1048576 + 0.95 * 524288), places=9)
        self.assertLess(abs(r["first_seen"] - time.time()), 120)
        self.assertEqual(r["first_seen"], r["last_seen"])

    def test_functions_sort_and_paginate(self):
        """sorted by NSM by default, by any field on request, cut into pages in SQL"""
        everyone = ["pay.charge", "cart.total", "pay.refund", "idle.fn", "rare.fn", "legacy.export"]
        self.assertEqual(self.names(), (6, everyone))
        self.assertEqual(self.names(limit=2, offset=2), (6, everyone[2:4]))
        self.assertEqual(self.names(offset=10), (6, []))
        self.assertEqual(self.names(sort="name", order="asc"), (6, sorted(everyone)))
        self.assertEqual(self.names(sort="calls", order="asc", limit=3),
                         (6, ["legacy.export", "rare.fn", "idle.fn"]))
        self.assertEqual(self.names(sort="error_rate", limit=1), (6, ["pay.charge"]))
        self.assertEqual(self.names(sort="p95_ms"),
                         (6, ["pay.refund", "pay.charge", "cart.total", "idle.fn", "legacy.export", "rare.fn"]))
        self.assertEqual(self.names(sort="p50_ms", order="asc", limit=2, offset=4),
                         (6, ["pay.charge", "pay.refund"]))

    def test_functions_filter(self):
        """department, name substring (any case) and state filters; total counts the filtered rows"""
        self.assertEqual(self.names(department="payments"), (2, ["pay.charge", "pay.refund"]))
        self.assertEqual(self.names(q="PAY.", sort="name", order="asc"), (2, ["pay.charge", "pay.refund"]))
        self.assertEqual(self.names(q="nothing-like-it"), (0, []))
        states = {"failing": ["pay.charge"], "working": ["cart.total", "pay.refund"], "idle": ["idle.fn"],
                  "underused": ["rare.fn"], "never_called": ["legacy.export"]}
        for state, names in states.items():
            self.assertEqual(self.names(state=state, sort="name", order="asc"), (len(names), names), state)
        self.assertEqual(self.names(department="checkout", state="working"), (1, ["cart.total"]))

    def test_bad_parameters_are_400(self):
        """a window, sort, order, state, limit or offset out of the doc is a 400 naming it"""
        bad = [("summary", {"window": "2h"}, "window: expected 1h, 24h, 7d or 30d"),
               ("functions", {"sort": "salary"}, "sort: expected one of the row fields"),
               ("functions", {"order": "up"}, "order: expected asc or desc"),
               ("functions", {"state": "busy"}, "state: expected failing, working, underused, never_called or idle"),
               ("functions", {"limit": "501"}, "limit: expected an integer 1..500"),
               ("functions", {"limit": "0"}, "limit: expected an integer 1..500"),
               ("functions", {"offset": "-1"}, "offset: expected an integer >= 0"),
               ("functions", {"offset": "x"}, "offset: expected an integer >= 0"),
               ("underuse", {"threshold": "0"}, "threshold: expected an integer >= 1"),
               ("graph", {}, "fn: expected a function name")]
        for view, params, error in bad:
            self.assertEqual(self.srv.get(self.acme["dashboard"], "acme", view, **params),
                             (400, {"error": error}), (view, params))
        self.assertEqual(len(self.get("functions", limit=500)["rows"]), 6)

    # ---- office, debt, underuse, incidents, graph, prompt --------------------------

    def test_office(self):
        """rooms by department, each employee with its live state and calls"""
        self.assertEqual(self.get("office"), {"departments": [
            {"department": "checkout", "functions": [
                {"name": "cart.total", "state": "working", "calls": 200},
                {"name": "idle.fn", "state": "idle", "calls": 50},
                {"name": "legacy.export", "state": "never_called", "calls": 0},
                {"name": "rare.fn", "state": "underused", "calls": 3}]},
            {"department": "payments", "functions": [
                {"name": "pay.charge", "state": "failing", "calls": 100},
                {"name": "pay.refund", "state": "working", "calls": 50}]}]})

    def test_debt(self):
        """debt = error rate x share; cells bin both into tenths; the trajectory per step"""
        d = self.get("debt", window="1h")
        pts = d["points"]
        self.assertEqual([p["name"] for p in pts], ["pay.charge", "cart.total", "idle.fn", "pay.refund", "rare.fn"])
        self.assertEqual(pts[0]["error_rate"], 0.1)
        self.assertAlmostEqual(pts[0]["share"], 810 / NSM)
        self.assertAlmostEqual(pts[0]["debt"], 0.1 * 810 / NSM)
        self.assertEqual([p["debt"] for p in pts[1:]], [0, 0, 0, 0])
        self.assertEqual(d["cells"], [{"x": 0, "y": 0, "count": 3}, {"x": 1, "y": 0, "count": 1},
                                      {"x": 6, "y": 1, "count": 1}])
        traj = d["trajectory"]
        self.assertEqual(len(traj), 61)
        nonzero = [p["debt"] for p in traj if p["debt"]]
        # the step of the first payload: 0.1 x 810 over that step's NSM (810 + 100 + 200)
        self.assertEqual(len(nonzero), 1)
        self.assertAlmostEqual(nonzero[0], 0.1 * 810 / 1110)

    def test_underuse(self):
        """under the threshold in 30 days (but called), and inventory never called"""
        self.assertEqual(self.get("underuse"), {
            "threshold": 10,
            "underused": [{"name": "rare.fn", "calls_30d": 3, "file": None, "line": None}],
            "never_called": [{"name": "legacy.export", "department": "checkout", "file": "legacy.c", "line": 5}]})
        self.assertEqual([u["name"] for u in self.get("underuse", threshold=60)["underused"]],
                         ["rare.fn", "idle.fn", "pay.refund"])

    def test_incidents(self):
        """an incident keeps its chain caller first, its count and its times"""
        inc = self.get("incidents")["incidents"]
        self.assertEqual(len(inc), 1)
        i = inc[0]
        self.assertIsInstance(i.pop("id"), int)
        self.assertLess(abs(i.pop("last_seen") - time.time()), 120)
        self.assertLess(abs(i.pop("first_seen") - time.time()), 120)
        self.assertEqual(i, {"kind": "error", "signal": 0, "count": 2,
                             "chain": [{"name": "cart.total", "file": "cart.c", "line": 3},
                                       {"name": "pay.charge", "file": "pay.c", "line": 31}]})

    def test_graph(self):
        """the edges into and out of a function, and its neighbours' calls"""
        self.assertEqual(self.get("graph", fn="pay.charge"), {
            "center": "pay.charge",
            "nodes": [{"name": "pay.charge", "department": "payments", "calls": 100},
                      {"name": "cart.total", "department": "checkout", "calls": 200},
                      {"name": "pay.refund", "department": "payments", "calls": 50},
                      {"name": "other.x", "department": None, "calls": 0}],
            "edges": [{"caller": "cart.total", "callee": "pay.charge", "calls": 80},
                      {"caller": "pay.charge", "callee": "pay.refund", "calls": 5},
                      {"caller": "other.x", "callee": "pay.charge", "calls": 3}]})
        self.assertEqual(self.srv.get(self.acme["dashboard"], "acme", "graph", fn="nope"),
                         (404, {"error": "function 'nope' not found"}))

    def test_prompt(self):
        """the fix prompt names the file:line, the numbers, the chain and the callers"""
        p = self.get("prompt", fn="pay.charge")
        self.assertEqual(p["name"], "pay.charge")
        for part in ("Function: pay.charge\n", "Department: payments\n", "Source: pay.c:31\n",
                     "- calls: 100, errors: 10 (error rate 10.00%)\n",
                     "- latency: p50 1.311 ms, p95 1.547 ms, max 5.000 ms\n",
                     "error, 2 times", "      cart.total (cart.c:3)\n", "   -> pay.charge (pay.c:31)\n",
                     "Callers (calls in the window):\n- cart.total (80)\n- other.x (3)\n",
                     "Callees (calls in the window):\n- pay.refund (5)\n"):
            self.assertIn(part, p["prompt"])
        self.assertNotIn("estimated", p["prompt"])
        # a function timed by samples says so under its latency
        p = self.get("prompt", fn="pay.refund")["prompt"]
        self.assertIn("max 2.000 ms\n  (estimated: 40 of the calls were not clocked, sampled timing)\n", p)

    # ---- who sees what ----------------------------------------------------------------

    def test_dashboard_keys_see_their_own_project_only(self):
        """401 without a valid dashboard key, 404 for any project but the key's own"""
        no = (401, {"error": "missing or unknown dashboard key"})
        self.assertEqual(self.srv.get(None, "acme", "summary"), no)
        self.assertEqual(self.srv.get("cnsmv_" + "a" * 32, "acme", "summary"), no)
        self.assertEqual(self.srv.get(self.acme["ingest"], "acme", "summary"), no)
        self.assertEqual(self.srv.get(self.other["dashboard"], "acme", "summary"),
                         (404, {"error": "project 'acme' not found"}))
        self.assertEqual(self.srv.get(self.acme["dashboard"], "other", "functions"),
                         (404, {"error": "project 'other' not found"}))
        self.assertEqual(self.srv.get(self.acme["dashboard"], "ghost", "summary"),
                         (404, {"error": "project 'ghost' not found"}))
        self.assertEqual(self.srv.get(self.acme["dashboard"], "acme", "salaries"),
                         (404, {"error": "no such endpoint"}))
        status, other = self.srv.get(self.other["dashboard"], "other", "functions")
        self.assertEqual((status, [r["name"] for r in other["rows"]]), (200, ["<img src=x onerror=alert(1)>"]))

    def test_api_answers_are_json_with_safe_headers(self):
        """JSON content type, no caching, nosniff and the CSP on every answer"""
        status, headers, data = self.srv.request(
            "GET", "/api/projects/other/functions", None,
            {"Authorization": "Bearer " + self.other["dashboard"]})
        self.assertEqual(status, 200)
        self.assertEqual((headers["content-type"], headers["cache-control"], headers["x-content-type-options"],
                          headers["content-security-policy"]),
                         ("application/json; charset=utf-8", "no-store", "nosniff", "default-src 'self'"))
        self.assertEqual(json.loads(data)["rows"][0]["name"], "<img src=x onerror=alert(1)>")
        self.assertEqual(self.srv.request("POST", "/api/projects/other/functions", b"", {})[0], 405)


if __name__ == "__main__":
    unittest.main()
