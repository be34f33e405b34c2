"""test_shop.py: the shop sample, run against a local receiver, delivers
exact calls, errors, names, files, lines, departments, weights, edges,
incidents and inventory, in every way it can be linked."""
import os
import unittest

from harness import (API_KEY, Case, SAMPLES_SRC, Totals, decl_line, run, sample,
                     sample_expect_shop)

N = 1000
DEPTS = "checkout,payments,inventory,legacy"
SRC = os.path.join(SAMPLES_SRC, "shop")
# name -> (file, function) of every function in the shop's four departments
WHERE = {
    "checkout.order.place_order": ("checkout/order.c", "place_order"),
    "checkout.cart.cart_total": ("checkout/cart.c", "cart_total"),
    "checkout.cart.cart_add_item": ("checkout/cart.c", "cart_add_item"),
    "checkout.coupons.coupon_apply": ("checkout/coupons.c", "coupon_apply"),
    "payments.card.card_charge": ("payments/card.c", "card_charge"),
    "payments.card.card_authorize": ("payments/card.c", "card_authorize"),
    "inventory.stock.stock_reserve": ("inventory/stock.c", "stock_reserve"),
    "inventory.stock.stock_reserved": ("inventory/stock.c", "stock_reserved"),
    "legacy.export.export_csv": ("legacy/export.c", "export_csv"),
    "legacy.export.export_xml": ("legacy/export.c", "export_xml"),
}


def location(name):
    f, fn = WHERE[name]
    return f, decl_line(os.path.join(SRC, f), fn)


class ShopCase(Case):
    plain_stdout = None

    def setUp(self):
        super().setUp()
        if not os.path.exists(sample("shop")):
            self.skipTest("samples not built")
        if ShopCase.plain_stdout is None:
            p = run([sample("shop-plain"), str(N)], self.env())
            ShopCase.plain_stdout = p.stdout
        self.assertTrue(self.plain_stdout.startswith("shop: orders=%d " % N), self.plain_stdout)

    def shop(self, variant="shop", n=N, **env):
        rec = self.receiver()
        env.setdefault("CODENSM_INCLUDE", DEPTS)
        r = run([sample(variant), str(n)], self.env(rec, **env))
        self.assert_ran(r)
        return r, rec, Totals(rec.committed())


class TestShopCounts(ShopCase):
    def test_counts_are_exact(self):
        """shop 1000: every function's calls and errors are exactly the workload's"""
        r, rec, t = self.shop()
        self.assert_exact(t, sample_expect_shop(N))

    def test_output_is_unchanged(self):
        """the shop prints the same line as its uninstrumented build"""
        r, rec, t = self.shop()
        self.assertEqual(r.stdout, self.plain_stdout)

    def test_static_variant_tracks(self):
        """shop linked with the static runtime delivers the same exact counts"""
        r, rec, t = self.shop("shop-static")
        self.assertEqual(r.stdout, self.plain_stdout)
        self.assert_exact(t, sample_expect_shop(N))

    def test_ldflags_first_variant_tracks(self):
        """shop linked with the pkg-config flags before the objects and --as-needed still tracks"""
        r, rec, t = self.shop("shop-ldflags")
        self.assertEqual(r.stdout, self.plain_stdout)
        self.assert_exact(t, sample_expect_shop(N))

    def test_zero_orders(self):
        """shop 0 sends only the functions main calls itself"""
        r, rec, t = self.shop(n=0)
        self.assert_exact(t, {"inventory.stock.stock_reserved": (1, 0),
                              "legacy.export.export_csv": (1, 0)})

    def test_histograms_and_times_add_up(self):
        """each function's histogram counts sum to its calls, and self time <= total time"""
        r, rec, t = self.shop()
        for name, e in t.fns.items():
            self.assertEqual(sum(e["hist"].values()), e["calls"], "histogram of %s" % name)
            self.assertGreaterEqual(e["total_ms"], 0, name)
            self.assertLessEqual(e["self_ms"], e["total_ms"] + 1e-6, name)
            self.assertLessEqual(e["max_ms"], e["total_ms"] + 1e-6, name)

    def test_requests_follow_the_contract(self):
        """every request is a POST to the endpoint with the bearer key and a JSON body"""
        r, rec, t = self.shop()
        reqs = rec.all_requests()
        self.assertGreaterEqual(len(reqs), 1)
        for q in reqs:
            self.assertEqual(q["path"], "/codensm/ingest")
            self.assertEqual(q["headers"].get("Authorization"), "Bearer " + API_KEY)
            self.assertTrue(q["headers"].get("Content-Type", "").startswith("application/json"),
                            q["headers"])
            self.assertLessEqual(len(q["raw"]), 512 * 1024)
            self.assertIsNotNone(q["json"], q["raw"][:200])
            for f in q["json"].get("functions", []):
                self.assertLessEqual(f["errors"], f["calls"], f)

    def test_meta(self):
        """_meta names the sdk, the service (the executable's name), the pid and a batch id"""
        r, rec, t = self.shop()
        for m in t.metas:
            self.assertEqual(m.get("sdk"), "codensm-c")
            self.assertEqual(m.get("service"), "shop")
            self.assertEqual(m.get("pid"), r.pid)
            self.assertEqual(m.get("hist"), "log2x2-ns")
            self.assertTrue(m.get("batch_id"))
        self.assertEqual(len({m["batch_id"] for m in t.metas}), len(t.metas))

    def test_service_from_environment(self):
        """CODENSM_SERVICE names the service in _meta"""
        r, rec, t = self.shop(CODENSM_SERVICE="shop-eu")
        self.assertTrue(t.metas)
        self.assertEqual({m.get("service") for m in t.metas}, {"shop-eu"})


class TestShopNames(ShopCase):
    def test_files_and_lines(self):
        """each function carries its source file (relative) and declaration line, sent once"""
        r, rec, t = self.shop()
        for name in sample_expect_shop(N):
            e = t.fns[name]
            self.assertEqual((e["file"], e["line"]), location(name), name)
            self.assertEqual(e["locations"], 1, "file/line of %s sent once" % name)

    def test_default_departments_and_weights(self):
        """the department is the first component of the name, the weight 1"""
        r, rec, t = self.shop()
        for name, e in t.fns.items():
            self.assertEqual(e["departments"], {name.split(".")[0]}, name)
            self.assertEqual(e["weights"], {1}, name)

    def test_departments_and_weights_from_environment(self):
        """CODENSM_DEPARTMENT and CODENSM_WEIGHTS apply, the longest prefix winning"""
        r, rec, t = self.shop(CODENSM_DEPARTMENT="checkout.coupons=marketing,payments=finance",
                              CODENSM_WEIGHTS="checkout=9,checkout.cart.cart_add_item=0.5")
        got = {n: (min(e["departments"]), min(e["weights"])) for n, e in t.fns.items()}
        self.assertEqual(got, {
            "checkout.order.place_order": ("checkout", 9),
            "checkout.cart.cart_total": ("checkout", 9),
            "checkout.cart.cart_add_item": ("checkout", 0.5),
            "checkout.coupons.coupon_apply": ("marketing", 9),
            "payments.card.card_charge": ("finance", 1),
            "payments.card.card_authorize": ("finance", 1),
            "inventory.stock.stock_reserve": ("inventory", 1),
            "inventory.stock.stock_reserved": ("inventory", 1),
            "legacy.export.export_csv": ("legacy", 1),
        })
        self.assertTrue(all(len(e["departments"]) == 1 and len(e["weights"]) == 1
                            for e in t.fns.values()))

    def test_include_and_exclude(self):
        """CODENSM_INCLUDE=checkout,payments.card and CODENSM_EXCLUDE=checkout.cart.cart_add_item select exactly those"""
        r, rec, t = self.shop(CODENSM_INCLUDE="checkout,payments.card",
                              CODENSM_EXCLUDE="checkout.cart.cart_add_item")
        exp = {k: v for k, v in sample_expect_shop(N).items()
               if k.startswith(("checkout.", "payments.card.")) and k != "checkout.cart.cart_add_item"}
        self.assert_exact(t, exp)
        self.assertEqual(r.stdout, self.plain_stdout)

    def test_include_nothing_matching(self):
        """an include that names no function sends no function"""
        r, rec, t = self.shop(CODENSM_INCLUDE="checkoutx,paymentsx")
        self.assert_exact(t, {})
        self.assertEqual(r.stdout, self.plain_stdout)

    def test_no_include_tracks_all_user_code(self):
        """without CODENSM_INCLUDE every function of the program is tracked and stderr says so"""
        r, rec, t = self.shop(CODENSM_INCLUDE=None)
        exp = dict(sample_expect_shop(N))
        exp["main.main"] = (1, 0)
        exp["main.worker"] = (2, 0)
        self.assert_exact(t, exp)
        self.assertEqual(len([ln for ln in r.stderr.splitlines() if "CODENSM_INCLUDE" in ln]), 1,
                         r.stderr)

    def test_disable(self):
        """CODENSM_DISABLE=1 sends nothing and changes nothing"""
        r, rec, t = self.shop(CODENSM_DISABLE="1")
        self.assert_exact(t, {})
        self.assertEqual(r.stdout, self.plain_stdout)

    def test_no_api_key_counts_but_sends_nothing(self):
        """without CODENSM_API_KEY nothing is sent and one stderr line says so"""
        r, rec, t = self.shop(CODENSM_API_KEY=None)
        self.assertEqual(rec.all_requests(), [])
        self.assertEqual(r.stdout, self.plain_stdout)
        self.assertEqual(len([ln for ln in r.stderr.splitlines() if "CODENSM_API_KEY" in ln]), 1,
                         r.stderr)


class TestShopGraph(ShopCase):
    def test_edges(self):
        """caller -> callee counts between tracked functions are exact"""
        r, rec, t = self.shop()
        items = sum(i % 3 + 1 for i in range(N))
        self.assertEqual(dict(t.edges), {
            ("checkout.order.place_order", "checkout.cart.cart_total"): N,
            ("checkout.cart.cart_total", "checkout.cart.cart_add_item"): items,
            ("checkout.cart.cart_add_item", "inventory.stock.stock_reserve"): items,
            ("checkout.order.place_order", "checkout.coupons.coupon_apply"): (N + 3) // 4,
            ("checkout.order.place_order", "payments.card.card_charge"): N,
            ("payments.card.card_charge", "payments.card.card_authorize"): N,
        })

    def test_error_incident_chain(self):
        """every declined card is one incident: place_order -> card_charge -> card_authorize, caller first, with file:line"""
        r, rec, t = self.shop()
        chain = ["checkout.order.place_order", "payments.card.card_charge",
                 "payments.card.card_authorize"]
        self.assertEqual(t.incident_counts(), {("error", tuple(chain)): N // 50})
        for inc in t.incidents:
            self.assertEqual(inc["chain"], [(n,) + location(n) for n in chain])

    def test_inventory_lists_never_called_functions(self):
        """the inventory names every included function, export_xml (never called) with file and line"""
        r, rec, t = self.shop()
        self.assertEqual(set(t.inventory), set(WHERE))
        xml = t.inventory["legacy.export.export_xml"]
        self.assertEqual((xml.get("file"), xml.get("line")), location("legacy.export.export_xml"))
        self.assertEqual(xml.get("department"), "legacy")
        self.assertNotIn("legacy.export.export_xml", t.fns)


if __name__ == "__main__":
    unittest.main()
