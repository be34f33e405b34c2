"""test_delivery_at_exit.py: a short program whose only send is its last
flush, at exit, meets one transient failure (a dropped or reset
connection, no answer, a 503): it tries again within its exit budget and
delivers in this run, exactly once.  A 429 and a 401 are not tried again:
the quota says stop, the key is wrong.  codensm_flush() tries again the
same way."""
import unittest

from harness import SANITIZER, Case, Totals, closed_port_url, compile_prog, run

W = 100
EXIT_S = 2.5 + 0.4    # the runtime's exit budget and the time to spool after it
# A 20 ms program that meets one fast failure exits within this; an ASan
# build takes longer to start and to stop.
PROMPT_S = EXIT_S if SANITIZER else 1.0


def once_expect(runs=1):
    """`runs` runs of `ticker 1 W` (one round, about 20 ms)."""
    return {"ticker.tick_round": (runs, 0), "ticker.tick_work": (W * runs, 0),
            "ticker.tick_rare": (runs, runs), "ticker.main": (runs, 0)}


def batch_ids(rec):
    return [(q["json"] or {}).get("_meta", {}).get("batch_id") for q in rec.all_requests()]


def runtime_lines(r):
    return [l for l in r.stderr.splitlines() if l.startswith("codensm:")]


class TestDeliveryAtExit(Case):
    def once(self, rec, **env):
        """One 20 ms ticker run: its only send is the final flush (the
        interval is the default 15 s).  Exits 0 with its own output."""
        prog = compile_prog("ticker", ["ticker.c"])
        r = run([prog, "1", str(W)], self.env(rec, CODENSM_INCLUDE="ticker", **env), timeout=60)
        self.assert_ran(r)
        self.assertEqual(r.stdout, "ticker: 1 x %d\n" % W)
        return r

    def assert_delivered_on_retry(self, rec, r, tries, limit_s):
        self.assertLess(r.seconds, limit_s, "exit time; %r" % r)
        self.assertEqual(len(rec.all_requests()), tries, "requests; %r" % r)
        self.assertEqual(len(set(batch_ids(rec))), 1,
                         "every try carries the same batch id: %r" % batch_ids(rec))
        self.assertEqual(self.spooled(), [], "nothing waits in the spool; %r" % r)
        self.assert_exact(Totals(rec.committed()), once_expect())

    def test_a_dropped_connection_is_tried_again(self):
        """the first connection closed without an answer: the second try delivers before the program exits"""
        rec = self.receiver(plan=["drop"])
        r = self.once(rec)
        self.assert_delivered_on_retry(rec, r, 2, PROMPT_S)

    def test_a_reset_connection_is_tried_again(self):
        """the first connection reset without an answer: the second try delivers before the program exits"""
        rec = self.receiver(plan=["reset"])
        r = self.once(rec)
        self.assert_delivered_on_retry(rec, r, 2, PROMPT_S)

    def test_a_lost_answer_is_resent_and_deduplicated(self):
        """committed, then the answer lost: resent at once with the same batch id, counted once"""
        rec = self.receiver(plan=["commit-reset"])
        r = self.once(rec)
        self.assert_delivered_on_retry(rec, r, 2, PROMPT_S)
        self.assertEqual([q["committed"] for q in rec.all_requests()], [True, False])

    def test_a_503_is_tried_again(self):
        """a 503: the second try delivers before the program exits"""
        rec = self.receiver(plan=[503])
        r = self.once(rec)
        self.assert_delivered_on_retry(rec, r, 2, PROMPT_S)

    def test_no_answer_is_tried_again_within_the_budget(self):
        """a first connection that never answers: given up on within the budget, a second delivers"""
        rec = self.receiver(plan=["hang"])
        rec.hang_seconds = 6
        r = self.once(rec)
        self.assert_delivered_on_retry(rec, r, 2, EXIT_S)

    def test_drop_503_then_ok(self):
        """a dropped connection, then a 503, then 200: three tries, delivered once, in this run"""
        rec = self.receiver(plan=["drop", 503])
        r = self.once(rec)
        self.assert_delivered_on_retry(rec, r, 3, PROMPT_S)

    def test_failing_every_time_spools_within_the_budget(self):
        """503 for every try: the exit stays within its budget and the body waits in the spool"""
        rec = self.receiver(rule=lambda b: 503)
        r = self.once(rec)
        self.assertLess(r.seconds, EXIT_S, "exit time; %r" % r)
        self.assertEqual(len(rec.all_requests()), 4, "tries of one body at exit")
        self.assertEqual(len(self.spooled()), 1)
        rec.rule = None
        self.once(rec)
        self.assertEqual(self.spooled(), [])
        self.assert_exact(Totals(rec.committed()), once_expect(runs=2))

    def test_a_refused_connection_is_not_tried_again(self):
        """nothing listening (the endpoint is down): spooled at once, the exit is not delayed"""
        r = self.once(closed_port_url())
        self.assertLess(r.seconds, PROMPT_S, "exit time; %r" % r)
        self.assertEqual(len(self.spooled()), 1)
        self.assertNotIn("trying", r.stderr)

    def test_429_is_not_tried_again_at_exit(self):
        """a 429 at exit: one request, the body spooled at once, the next run delivers it"""
        rec = self.receiver(plan=[429])
        r = self.once(rec)
        self.assertLess(r.seconds, PROMPT_S, "exit time; %r" % r)
        self.assertEqual(len(rec.all_requests()), 1, "requests; %r" % r)
        self.assertEqual(len(self.spooled()), 1)
        self.once(rec)
        self.assertEqual(self.spooled(), [])
        self.assert_exact(Totals(rec.committed()), once_expect(runs=2))

    def test_401_is_dropped_with_one_line(self):
        """a 401 at exit: one request, one stderr line, nothing spooled, the program unaffected"""
        rec = self.receiver(rule=lambda b: 401)
        r = self.once(rec)
        self.assertLess(r.seconds, PROMPT_S, "exit time; %r" % r)
        self.assertEqual(len(rec.all_requests()), 1, "requests; %r" % r)
        self.assertEqual(self.spooled(), [])
        lines = runtime_lines(r)
        self.assertEqual(len(lines), 1, "the runtime's stderr: %r" % lines)
        self.assertIn("HTTP 401", lines[0])
        self.assertIn("CODENSM_API_KEY", lines[0])

    def test_401_under_fast_flushes_sends_each_body_once(self):
        """401 to every body of a one-second run: each body sent once (no batch id twice), one line, nothing spooled"""
        rec = self.receiver(rule=lambda b: 401)
        prog = compile_prog("ticker", ["ticker.c"])
        r = run([prog, "50", str(W)],
                self.env(rec, CODENSM_INCLUDE="ticker", CODENSM_FLUSH_INTERVAL="0.1"))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "ticker: 50 x %d\n" % W)
        ids = batch_ids(rec)
        self.assertGreaterEqual(len(ids), 5, "bodies in a one-second run at 0.1 s intervals")
        self.assertEqual(len(ids), len(set(ids)), "a batch id sent twice: %r" % ids)
        self.assertEqual(self.spooled(), [])
        self.assertEqual(len(runtime_lines(r)), 1, "the runtime's stderr: %r" % r.stderr)

    def test_codensm_flush_tries_again(self):
        """codensm_flush() meeting a 503 tries again and returns 0: delivered before it returns"""
        rec = self.receiver(plan=[503])
        prog = compile_prog("sampler", ["sampler.c"])
        r = run([prog, "1", "10"], self.env(rec, CODENSM_INCLUDE="sampler"))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "sampler: 1 x 10, 0 failed\n")
        self.assertEqual([q["action"] for q in rec.all_requests()], [503, 200, 200],
                         "the flush's two tries, then the exit's")
        self.assertEqual(self.spooled(), [])
        self.assert_exact(Totals(rec.committed()),
                          {"sampler.sample_round": (1, 0), "sampler.sample_spin": (10, 1),
                           "sampler.main": (1, 0)})


if __name__ == "__main__":
    unittest.main()
