"""CODENSM_MODE=full on the server (docs/api.md): the flows section is
validated (a one-line 400 naming the field), each function's latest flow
is stored with where it came from, and served: complexity columns in the
functions view, one function's flow, the code view (unique IP vs
boilerplate, test coverage, complexity x error rate), the AI prompt's
complexity signals, and the flow drawn by Graphviz as SVG.  Every number
below is computed by hand from the data set."""
import json
import re
import unittest

from serverlib import ServerTest, fn

S, D, L, B, E, X = "start", "decision", "loop", "block", "end", "error"


def flow(name, nodes, edges, decisions, loops, returns, lines, calls_out=(), has_tests=False):
    return {"name": name, "nodes": [{"type": t} for t in nodes], "edges": [list(e) for e in edges],
            "decisions": decisions, "loops": loops, "returns": returns, "nodes_count": len(nodes),
            "lines": lines, "calls_out": list(calls_out), "has_tests": has_tests}


# The seed's example entry, exactly.
CART_SUM = flow("shop.cart.cart_sum", [S, L, D, B, E], [(0, 1), (1, 2), (2, 3), (3, 4)], 1, 1, 1, 6,
                ["shop.cart.item_price", "shop.coupons.coupon_apply"], True)
FLOWS = [
    CART_SUM,
    # a getter: boilerplate, untested
    flow("shop.cart.get_total", [S, E], [(0, 1)], 0, 0, 1, 3),
    # branchy, with an error exit: unique IP, untested
    flow("shop.pay.charge", [S, D, X, D, B, E], [(0, 1), (1, 2), (1, 3), (3, 4), (3, 5), (4, 5)],
         3, 0, 2, 20, ["shop.pay.validate"]),
    # a thin wrapper of exactly 5 lines: still boilerplate; tested
    flow("shop.pay.wrap", [S, B, E], [(0, 1), (1, 2)], 0, 0, 1, 5, ["shop.pay.charge"], True),
]
FUNCTIONS = [
    fn("shop.cart.cart_sum", 100, 10, department="cart", weight=2),   # NSM 180
    fn("shop.cart.get_total", 50, 0, department="cart", weight=1),    # NSM 50
    fn("shop.pay.charge", 20, 5, department="pay", weight=4),         # NSM 60
    fn("shop.pay.wrap", 10, 0, department="pay", weight=1),           # NSM 10
    fn("shop.legacy.old", 5, 0, department="legacy", weight=1),       # NSM 5, no flow
]


class Flows(ServerTest):
    @classmethod
    def prepare(cls):
        cls.shop = cls.srv.project("shop")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # a first version of cart_sum's flow, replaced by the second body's
        old = dict(CART_SUM, decisions=7, lines=60)
        for payload in ({"functions": [], "flows": [old],
                         "_meta": {"service": "old", "batch_id": "b-0", "build_id": "00aa"}},
                        {"functions": FUNCTIONS, "flows": FLOWS,
                         "_meta": {"service": "shop", "batch_id": "b-1", "build_id": "5f3e2d1c"}}):
            status, body = cls.srv.post(cls.shop["ingest"], payload)
            assert status == 200, body

    def get(self, view, status=200, **params):
        got, body = self.srv.get(self.shop["dashboard"], "shop", view, **params)
        self.assertEqual(got, status, body)
        return body

    # ---- ingest ------------------------------------------------------------

    def bad(self, flows, message):
        status, body = self.srv.post(self.shop["ingest"], {"functions": [fn("shop.bad", 1)], "flows": flows})
        self.assertEqual((status, body), (400, {"error": message}))
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM functions WHERE name = 'shop.bad'"), [(0,)])

    def test_a_malformed_build_id_is_a_400_naming_it(self):
        """_meta.build_id that is not a string of 1..128 bytes: 400 naming it, nothing kept"""
        for build in (42, "", "f" * 129):
            status, body = self.srv.post(self.shop["ingest"], {
                "functions": [fn("shop.bad", 1)], "_meta": {"build_id": build}})
            self.assertEqual((status, body), (400, {"error": "_meta.build_id: expected a string of 1..128 bytes"}))
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM functions WHERE name = 'shop.bad'"), [(0,)])

    def test_a_malformed_flow_is_a_400_naming_the_field(self):
        """each malformed entry is refused with one line naming the field, and nothing of the body is kept"""
        two = flow("shop.x", [S, E], [(0, 1)], 0, 0, 1, 3)
        self.bad({"name": "x"}, "flows: expected an array")
        self.bad([dict(two, nodes=[{"type": "start"}, {"type": "diamond"}])],
                 "flows[0].nodes[1].type: expected start, decision, loop, block, end or error")
        self.bad([two, dict(two, edges=[[0, 2]])], "flows[1].edges[0]: expected [from, to], node numbers 0..1")
        self.bad([dict(two, nodes_count=3)], "flows[0].nodes_count: 3, but nodes has 2")
        self.bad([dict(two, has_tests="yes")], "flows[0].has_tests: expected true or false")
        self.bad([dict(two, loops=-1)], "flows[0].loops: expected an integer 0..100000000")
        self.bad([dict(two, calls_out=["f"] * 41)], "flows[0].calls_out: expected an array of at most 40 names")
        self.bad([dict(two, calls_out=[""])], "flows[0].calls_out[0]: expected a string of 1..512 bytes")
        self.bad([{k: v for k, v in two.items() if k != "name"}],
                 "flows[0].name: expected a string of 1..512 bytes")

    def test_the_latest_flow_is_stored_with_its_service_build_and_batch_only_checked_fields(self):
        """the second body's flow replaced the first, with its build-id; extra fields (a label) are never stored"""
        self.assertEqual(self.get("flow", fn="shop.cart.cart_sum"),
                         {"name": "shop.cart.cart_sum", "flow": CART_SUM, "service": "shop",
                          "build_id": "5f3e2d1c", "batch_id": "b-1", "received_at": self.get("flow", fn="shop.cart.cart_sum")["received_at"],
                          "boilerplate": False, "complexity": 3})
        labelled = dict(FLOWS[1], name="shop.labelled", label="if (secret == 42)",
                        nodes=[{"type": "start", "label": "x = 1"}, {"type": "end"}])
        status, _ = self.srv.post(self.shop["ingest"], {"functions": [], "flows": [labelled]})
        self.assertEqual(status, 200)
        self.assertEqual(self.get("flow", fn="shop.labelled")["flow"], dict(FLOWS[1], name="shop.labelled"))
        self.assertNotIn("secret", repr(self.srv.sql("SELECT flow FROM flows")))

    def test_a_function_without_flow_is_a_404(self):
        """flow?fn= of a function with no flow: 404 naming it; no fn: 400"""
        self.assertEqual(self.get("flow", 404, fn="shop.legacy.old"), {"error": "no flow for function 'shop.legacy.old'"})
        self.assertEqual(self.get("flow", 400), {"error": "fn: expected a function name"})

    # ---- the functions table -------------------------------------------------

    def test_functions_rows_carry_the_complexity_columns(self):
        """decisions, loops, returns, nodes_count, lines, has_tests per row; null without a flow; sortable"""
        rows = {r["name"]: r for r in self.get("functions")["rows"]}
        cols = ("decisions", "loops", "returns", "nodes_count", "lines", "has_tests")
        self.assertEqual({n: tuple(r[c] for c in cols) for n, r in rows.items() if n.startswith("shop.")}, {
            "shop.cart.cart_sum": (1, 1, 1, 5, 6, True),
            "shop.cart.get_total": (0, 0, 1, 2, 3, False),
            "shop.pay.charge": (3, 0, 2, 6, 20, False),
            "shop.pay.wrap": (0, 0, 1, 3, 5, True),
            "shop.legacy.old": (None,) * 6,
        })
        names = [r["name"] for r in self.get("functions", sort="decisions", order="desc", q="shop.")["rows"]]
        self.assertEqual(names[:2], ["shop.pay.charge", "shop.cart.cart_sum"])

    # ---- the code view --------------------------------------------------------

    def test_code_view_splits_ip_and_boilerplate_and_reads_test_coverage(self):
        """4 analysed functions, NSM 300: IP 2 functions / 240 NSM, boilerplate 2 / 60; untested NSM 110"""
        c = self.get("code")
        self.assertEqual((c["functions"], c["analysed"], c["not_analysed"], c["nsm_analysed"]), (5, 4, 1, 300.0))
        self.assertEqual(c["boilerplate_rule"], {"decisions": 0, "loops": 0, "max_lines": 5})
        self.assertEqual(c["split"], {
            "unique_ip": {"functions": 2, "function_share": 0.5, "nsm": 240.0, "nsm_share": 0.8},
            "boilerplate": {"functions": 2, "function_share": 0.5, "nsm": 60.0, "nsm_share": 0.2}})
        self.assertEqual(c["tests"], {"with_tests": 2, "without_tests": 2, "tested_share": 0.5,
                                      "untested_nsm": 110.0, "untested_nsm_share": 110 / 300})
        self.assertEqual([(r["name"], r["nsm"]) for r in c["load_bearing_untested"]],
                         [("shop.pay.charge", 60.0), ("shop.cart.get_total", 50.0)])

    def test_complexity_against_error_rate(self):
        """one point per analysed function called in the window: complexity = decisions + loops + 1"""
        pts = [(p["name"], p["complexity"], p["error_rate"], p["boilerplate"])
               for p in self.get("code")["complexity_vs_errors"]]
        self.assertEqual(pts, [("shop.cart.cart_sum", 3, 0.1, False), ("shop.pay.charge", 4, 0.25, False),
                               ("shop.cart.get_total", 1, 0.0, True), ("shop.pay.wrap", 1, 0.0, True)])

    # ---- the prompt ---------------------------------------------------------------

    def test_the_fix_prompt_carries_the_complexity_signals(self):
        """the AI prompt says the counts, the cyclomatic number, the test verdict and the static callees"""
        p = self.get("prompt", fn="shop.pay.charge")["prompt"]
        self.assertIn("Complexity (static analysis): 3 decisions, 0 loops, 2 returns, 6 nodes, 20 lines;"
                      " cyclomatic complexity 4; no test file uses it\nCalls (static): shop.pay.validate\n", p)
        self.assertNotIn("Complexity", self.get("prompt", fn="shop.legacy.old")["prompt"])

    # ---- the diagram --------------------------------------------------------------

    def svg(self, name):
        from urllib.parse import urlencode
        return self.srv.request("GET", "/api/projects/shop/flow.svg?" + urlencode({"fn": name}), None,
                                {"Authorization": "Bearer " + self.shop["dashboard"]})

    def test_the_flow_is_drawn_by_graphviz_with_exactly_its_nodes_and_edges(self):
        """flow.svg of the seed's entry: 5 nodes of their BPMN kinds, the 4 edges, positions from dot"""
        status, headers, data = self.svg("shop.cart.cart_sum")
        self.assertEqual((status, headers["content-type"]), (200, "image/svg+xml"))
        svg = data.decode()
        self.assertIn("Generated by graphviz", svg)
        nodes = re.findall(r'<g id="node\d+" class="node (\w+)">\s*<title>(n\d+)</title>', svg)
        self.assertEqual(nodes, [("start", "n0"), ("loop", "n1"), ("decision", "n2"), ("block", "n3"),
                                 ("end", "n4")])
        edges = re.findall(r'<g id="edge\d+" class="edge">\s*<title>(n\d+)&#45;&gt;(n\d+)</title>', svg)
        self.assertEqual(sorted(edges), [("n0", "n1"), ("n1", "n2"), ("n2", "n3"), ("n3", "n4")])
        # BPMN shapes: events are circles (ellipse), the gateway a diamond (polygon of 4 points)
        self.assertEqual(len(re.findall(r'class="node (?:start|end)">.*?<ellipse', svg, re.S)), 2)
        diamond = re.search(r'class="node decision">.*?<polygon[^>]*points="([^"]+)"', svg, re.S).group(1)
        self.assertEqual(len(diamond.split()), 5)  # 4 corners, the first repeated

    def test_an_error_end_is_drawn_in_red(self):
        """charge's error node is a thick red circle"""
        _, _, data = self.svg("shop.pay.charge")
        m = re.search(r'class="node error">.*?<ellipse[^>]*stroke="([^"]+)" stroke-width="([^"]+)"', data.decode(), re.S)
        self.assertEqual(m.groups(), ("#c62828", "4"))

    def test_a_flow_too_large_to_draw_is_a_422(self):
        """a stored flow of 3,001 nodes is served as JSON but not drawn: 422 naming the limit"""
        n = 3001
        big = flow("shop.huge", ["start"] + ["block"] * (n - 2) + ["end"], [(i, i + 1) for i in range(n - 1)],
                   0, 0, 1, 9000)
        status, _ = self.srv.post(self.shop["ingest"], {"functions": [], "flows": [big]})
        self.assertEqual(status, 200)
        self.assertEqual(self.get("flow", fn="shop.huge")["flow"]["nodes_count"], n)
        status, _, data = self.svg("shop.huge")
        self.assertEqual((status, json.loads(data)),
                         (422, {"error": "flow of 3001 nodes: too large to draw (at most 3000)"}))

    def test_a_function_without_flow_has_no_diagram(self):
        status, _, data = self.svg("shop.legacy.old")
        self.assertEqual((status, json.loads(data)), (404, {"error": "no flow for function 'shop.legacy.old'"}))


if __name__ == "__main__":
    unittest.main()
