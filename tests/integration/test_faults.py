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

    def test_429_doubles_the_interval(self):
        """429 to every body at a 0.1 s interval: the gaps between requests are 0.2, 0.4, 0.8 s, not 0.1"""
        rec = self.receiver(rule=lambda b: 429)
        prog = compile_prog("ticker", ["ticker.c"])
        r = run([prog, "100", str(W)],
                self.env(rec, CODENSM_INCLUDE="ticker", CODENSM_FLUSH_INTERVAL="0.1"))
        self.assert_ran(r)
        times = [q["time"] for q in rec.all_requests()]
        # Run of about 2 s: periodic sends at about 0.1, 0.3, 0.7 and 1.5 s
        # (the next would be at 3.1), then the one at exit.
        self.assertIn(len(times), (4, 5), "requests in a 2 s run; %r" % r)
        gaps = [round(b - a, 3) for a, b in zip(times, times[1:4])]
        for k, gap in enumerate(gaps):
            want = 0.1 * 2 ** (k + 1)
            # Never sooner than the interval; later only by one cycle's work.
            self.assertTrue(want <= gap < want * 1.5 + 0.1,
                            "gap %d: %.3f s, the doubled interval is %.1f s; gaps %r" % (k, gap, want, gaps))
        self.assertEqual(len(self.spooled()), 1, "the quota's body waits in the spool")
        calm = self.receiver()
        run([prog, "100", str(W)], self.env(calm, CODENSM_INCLUDE="ticker", CODENSM_FLUSH_INTERVAL="0.1"))
        self.assertGreaterEqual(len(calm.all_requests()), 12, "requests in 2 s at 0.1 s without a 429")

    def test_429_doubling_stops_at_5_minutes(self):
        """429 to six forced flushes at a 40 s interval: the runtime says 80, 160, then 300 s (the cap), and no more"""
        rec = self.receiver(rule=lambda b: 429)
        prog = compile_prog("sampler", ["sampler.c"])
        r = run([prog, "6", "10"], self.env(rec, CODENSM_INCLUDE="sampler", CODENSM_FLUSH_INTERVAL="40"))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "sampler: 6 x 10, 6 failed\n", "codensm_flush() is -1 under a quota")
        said = [l for l in r.stderr.splitlines() if l.startswith("codensm: quota exceeded: flushing every")]
        self.assertEqual(said, ["codensm: quota exceeded: flushing every %d s from now on" % s
                                for s in (80, 160, 300)])
        self.assertEqual(len(rec.all_requests()), 7, "one per flush and one at exit, none tried again")

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
