"""test_fatal_signals.py: each fatal signal the runtime claims (SIGBUS,
SIGFPE, SIGILL here; SIGSEGV and SIGABRT in test_crash and test_hostile)
counts an error for every tracked call on the faulting stack, spools what
is unsent with an incident naming the signal, and still ends the program
as the signal would have: the next run delivers, exact.  A program's own
SIGSEGV handler still runs, whether it was installed before the runtime's
(the runtime hands the fault on to it) or after, calling the runtime's as
its previous one."""
import signal
import unittest

from harness import SANITIZER, Case, Totals, compile_prog, run

N = 300
STACK = ["fatal.main", "fatal.fatal_outer", "fatal.fatal_boom"]


class TestFatalSignals(Case):
    def setUp(self):
        super().setUp()
        if SANITIZER:
            self.skipTest("the sanitizer owns the fatal signals")
        self.prog = compile_prog("fatal", ["fatal.c"])

    def fault_then_deliver(self, mode, status, **env):
        """`fatal MODE N` ends with `status`, with an endpoint that takes
        everything; whatever it did not deliver waits in the spool and
        `fatal ok 7` delivers it.  The totals of both runs."""
        rec = self.receiver()
        r = run([self.prog, mode, str(N)], self.env(rec, CODENSM_INCLUDE="fatal", **env))
        self.assertEqual(r.returncode, status, "how the program ended; %r" % r)
        self.assertEqual(r.stdout, "fatal: %s %d\n" % (mode, N))
        self.assertGreaterEqual(len(self.spooled()), 1, "a spool file after the fault; %r" % r)
        r2 = run([self.prog, "ok", "7"], self.env(rec, CODENSM_INCLUDE="fatal"))
        self.assert_ran(r2)
        self.assertEqual(self.spooled(), [], "the second run drained the spool")
        self.last = r
        return Totals(rec.committed())

    def assert_fault_counted(self, t, sig):
        exp = {name: (1, 1) for name in STACK}
        exp["fatal.main"] = (2, 1)          # the faulting run's, and the ok run's
        exp["fatal.fatal_work"] = (N + 7, 0)
        self.assert_exact(t, exp)
        incidents = [i for i in t.incidents if i["kind"] == "signal"]
        self.assertEqual([(i["signal"], i["count"], [c[0] for c in i["chain"]]) for i in incidents],
                         [(sig, 1, STACK)])

    def test_sigbus(self):
        """a store past the end of a mapped file (SIGBUS): every frame on the stack 1 error, spooled, the program killed by SIGBUS"""
        self.assert_fault_counted(self.fault_then_deliver("bus", -signal.SIGBUS), signal.SIGBUS)

    def test_sigfpe(self):
        """an integer division by zero (SIGFPE): counted, spooled, the program killed by SIGFPE"""
        self.assert_fault_counted(self.fault_then_deliver("fpe", -signal.SIGFPE), signal.SIGFPE)

    def test_sigill(self):
        """an undefined instruction (SIGILL): counted, spooled, the program killed by SIGILL"""
        self.assert_fault_counted(self.fault_then_deliver("ill", -signal.SIGILL), signal.SIGILL)

    def test_own_handler_installed_after_the_runtime(self):
        """a SIGSEGV handler installed by main that calls the previous one (the runtime's): it runs, the counts are spooled, SIGSEGV ends the program"""
        t = self.fault_then_deliver("segv-after", -signal.SIGSEGV)
        self.assertEqual(self.last.stderr.count("fatal: own handler ran\n"), 1, repr(self.last))
        self.assert_fault_counted(t, signal.SIGSEGV)

    def test_own_handler_installed_before_the_runtime(self):
        """a SIGSEGV handler installed before codensm_init() started the runtime: the runtime spools, then hands the fault to it, and its _exit(3) ends the program"""
        from harness import API_KEY
        t = self.fault_then_deliver("segv-before", 3, CODENSM_API_KEY=None, FATAL_KEY=API_KEY)
        self.assertEqual(self.last.stderr.count("fatal: own handler ran\n"), 1, repr(self.last))
        self.assert_fault_counted(t, signal.SIGSEGV)


if __name__ == "__main__":
    unittest.main()
