"""test_crash.py: a SIGSEGV in a worker thread counts an error for every
tracked call on that thread's stack, leaves what was unsent in the spool,
and the next run with the same CODENSM_SPOOL_DIR delivers it: the totals
over both runs are exact."""
import os
import signal
import unittest

from harness import PROGS, Case, Totals, compile_prog, decl_line, run, SANITIZER

STACK = ["crash.crash_worker", "crash.crash_outer", "crash.crash_middle", "crash.crash_boom"]


class TestCrash(Case):
    def setUp(self):
        super().setUp()
        if SANITIZER:
            self.skipTest("the sanitizer owns SIGSEGV")
        self.prog = compile_prog("crash", ["crash.c"])

    def crash_then_resend(self, endpoint_up):
        rec = self.receiver()
        env = self.env(rec, CODENSM_INCLUDE="crash")
        dead = self.env("http://127.0.0.1:9/codensm/ingest", CODENSM_INCLUDE="crash")
        r = run([self.prog, "crash", "500"], env if endpoint_up else dead)
        self.assertEqual(r.returncode, -signal.SIGSEGV, "the crash still kills the program; %r" % r)
        self.assertEqual(r.stdout, "crash: crash 500\n")
        spooled = self.spooled()
        self.assertGreaterEqual(len(spooled), 1, "a spool file after the crash")
        r2 = run([self.prog, "ok", "7"], env)
        self.assert_ran(r2)
        self.assertEqual(self.spooled(), [], "the second run drained the spool")
        return Totals(rec.committed())

    def test_crash_is_counted_and_resent(self):
        """crash 500 then ok 7: crash_step 507 calls, each frame on the crashing stack 1 call and 1 error"""
        t = self.crash_then_resend(endpoint_up=True)
        exp = {name: (1, 1) for name in STACK}
        exp["crash.crash_step"] = (507, 0)
        exp["crash.crash_worker"] = (2, 1)   # once crashed, once in the ok run
        exp["crash.main"] = (1, 0)           # only the ok run's main returned
        self.assert_exact(t, exp)

    def test_crash_with_endpoint_down(self):
        """the same when nothing listens during the crash: everything arrives with the next run"""
        t = self.crash_then_resend(endpoint_up=False)
        exp = {name: (1, 1) for name in STACK}
        exp["crash.crash_step"] = (507, 0)
        exp["crash.crash_worker"] = (2, 1)
        exp["crash.main"] = (1, 0)
        self.assert_exact(t, exp)

    def test_signal_incident(self):
        """the crash is one incident of kind signal 11 with the worker's whole stack, caller first"""
        t = self.crash_then_resend(endpoint_up=True)
        sig = [i for i in t.incidents if i["kind"] == "signal"]
        self.assertEqual(len(sig), 1, t.incidents)
        self.assertEqual((sig[0]["signal"], sig[0]["count"]), (signal.SIGSEGV, 1))
        self.assertEqual([c[0] for c in sig[0]["chain"]], STACK)
        src = os.path.join(PROGS, "crash.c")
        self.assertEqual(sig[0]["chain"][-1][1:], ("crash.c", decl_line(src, "crash_boom")))


if __name__ == "__main__":
    unittest.main()
