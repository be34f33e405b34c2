"""test_faults.py: whatever the endpoint does (down, 503, 429, 413, slow,
resetting the connection, never answering), the program exits promptly
with its output unchanged, and the calls arrive exactly once, now or with
the next run from the same spool."""
import os
import unittest

from harness import Case, Totals, closed_port_url, compile_prog, run, sample, sample_expect_shop

R, W = 50, 100  # ticker rounds and calls per round


def ticker_expect(runs=1, drains=0):
    """One ticker run's calls; each drain run (ticker 0 0) adds a main."""
    return {"ticker.tick_round": (R * runs, 0), "ticker.tick_work": (R * W * runs, 0),
            "ticker.tick_rare": ((R + 9) // 10 * runs, (R + 9) // 10 * runs),
            "ticker.main": (runs + drains, 0)}


class FaultCase(Case):
    def ticker(self, rec, interval="0.1", **env):
        prog = compile_prog("ticker", ["ticker.c"])
        r = run([prog, str(R), str(W)],
                self.env(rec, CODENSM_INCLUDE="ticker", CODENSM_FLUSH_INTERVAL=interval, **env),
                timeout=60)
        self.assert_ran(r)
        self.assertEqual(r.stdout, "ticker: %d x %d\n" % (R, W))
        return r

    def drain(self, rec):
        """A second, empty run from the same spool folder sends what is left."""
        prog = compile_prog("ticker", ["ticker.c"])
        r = run([prog, "0", "0"], self.env(rec, CODENSM_INCLUDE="ticker"))
        self.assert_ran(r)
        self.assertEqual(self.spooled(), [], "the spool is empty after a run with a live endpoint")


class TestFaults(FaultCase):
    def test_flush_interval_is_honoured(self):
        """with CODENSM_FLUSH_INTERVAL=0.1 a one-second run sends several bodies, exact in sum"""
        rec = self.receiver()
        self.ticker(rec)
        t = Totals(rec.committed())
        self.assert_exact(t, ticker_expect())
        self.assertGreaterEqual(t.bodies, 4, "bodies in about 1 s at 0.1 s intervals")

    def test_503_then_ok(self):
        """three 503 answers, then 200: merged back and resent, nothing lost or doubled"""
        rec = self.receiver(plan=[503, 503, 503])
        self.ticker(rec)
        self.drain(rec)
        self.assert_exact(Totals(rec.committed()), ticker_expect(drains=1))

    def test_429_merges_back(self):
        """a 429 answer: merged back into the next send, nothing lost or doubled"""
        rec = self.receiver(plan=[429])
        self.ticker(rec)
        self.drain(rec)
        self.assert_exact(Totals(rec.committed()), ticker_expect(drains=1))
        self.assertIn(429, [q["action"] for q in rec.all_requests()])

    def test_429_slows_down(self):
        """after a 429 the interval doubles: fewer requests than without it"""
        rec = self.receiver(plan=[429])
        self.ticker(rec, interval="0.2")
        calm = self.receiver()
        self.ticker(calm, interval="0.2")
        self.assertLess(len(rec.all_requests()), len(calm.all_requests()) + 1)

    def test_413_splits(self):
        """413 for any body with more than one function: the runtime splits, every call arrives once"""
        rec = self.receiver(rule=lambda b: 413 if len(b.get("functions", [])) > 1 else 200)
        self.ticker(rec)
        self.drain(rec)
        t = Totals(rec.committed())
        self.assert_exact(t, ticker_expect(drains=1))
        self.assertTrue(all(len(b.get("functions", [])) <= 1 for b in rec.committed()))

    def test_slow_answers(self):
        """answers delayed 0.5 s: still exact, and the program is not slowed by much"""
        rec = self.receiver(rule=lambda b: ("delay", 0.5))
        r = self.ticker(rec)
        self.assert_exact(Totals(rec.committed()), ticker_expect())
        self.assertLess(r.seconds, R * 0.02 + 5)

    def test_reset_before_commit(self):
        """the connection reset without an answer (not committed): resent, exact"""
        rec = self.receiver(plan=["reset", "reset"])
        self.ticker(rec)
        self.drain(rec)
        self.assert_exact(Totals(rec.committed()), ticker_expect(drains=1))

    def test_reset_after_commit(self):
        """committed but the answer lost: the retry carries the same batch id, so nothing counts twice"""
        rec = self.receiver(plan=["commit-reset", "commit-reset"])
        self.ticker(rec)
        self.drain(rec)
        self.assert_exact(Totals(rec.committed()), ticker_expect(drains=1))

    def test_endpoint_down_then_up(self):
        """endpoint down: the shop exits within a few seconds and spools; the next run delivers both"""
        r = run([sample("shop"), "1000"],
                self.env(closed_port_url(), CODENSM_INCLUDE="checkout,payments,inventory,legacy"))
        self.assert_ran(r)
        self.assertLess(r.seconds, 6, "exit time with the endpoint down")
        self.assertGreaterEqual(len(self.spooled()), 1)
        plain = run([sample("shop-plain"), "1000"], self.env())
        self.assertEqual(r.stdout, plain.stdout)
        rec = self.receiver()
        r2 = run([sample("shop"), "1000"],
                 self.env(rec, CODENSM_INCLUDE="checkout,payments,inventory,legacy"))
        self.assert_ran(r2)
        self.assertEqual(self.spooled(), [])
        exp = {k: (2 * c, 2 * e) for k, (c, e) in sample_expect_shop(1000).items()}
        self.assert_exact(Totals(rec.committed()), exp)

    def test_endpoint_never_answers(self):
        """an endpoint that accepts and never answers: exit within a few seconds, nothing lost"""
        rec = self.receiver(rule=lambda b: "hang")
        r = run([sample("shop"), "1000"],
                self.env(rec, CODENSM_INCLUDE="checkout,payments,inventory,legacy"))
        self.assert_ran(r)
        self.assertLess(r.seconds, 10, "exit time with a hanging endpoint")
        rec.rule = None
        r2 = run([sample("shop"), "0"], self.env(rec, CODENSM_INCLUDE="checkout,payments,inventory,legacy"))
        self.assert_ran(r2)
        exp = sample_expect_shop(1000)
        exp["inventory.stock.stock_reserved"] = (2, 0)
        exp["legacy.export.export_csv"] = (2, 0)
        self.assert_exact(Totals(rec.committed()), exp)

    def test_401_is_dropped_not_retried_forever(self):
        """401 (unknown key): the program exits promptly and its output is unchanged"""
        rec = self.receiver(rule=lambda b: 401)
        r = run([sample("shop"), "100"], self.env(rec, CODENSM_INCLUDE="checkout"))
        self.assert_ran(r)
        self.assertLess(r.seconds, 6)
        self.assertLessEqual(len(rec.all_requests()), 3)


if __name__ == "__main__":
    unittest.main()
