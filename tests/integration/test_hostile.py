"""test_hostile.py: the program shapes that are hardest on a runtime inside
someone else's process (threads that come and go, exit() from a worker,
fork + exec, abort(), instrumented signal handlers, recursion far deeper
than the shadow stack, libraries unloaded and replaced at the same address,
more functions than the guardrails allow): the program's own output and exit
status are unchanged, and the shipped counts are exact."""
import os
import re
import signal
import unittest

from harness import (PROGS, SANITIZER, Case, Totals, compile_prog, rt_link, run)


def hostile():
    return compile_prog("hostile", ["hostile.c"])


def plain_hostile():
    return compile_prog("hostile-plain", ["hostile.c"], instrument=False, link=rt_link())


class HostileCase(Case):
    def hostile_run(self, args, rc=0, **env):
        rec = self.receiver()
        env.setdefault("CODENSM_INCLUDE", "hostile")
        r = run([hostile()] + [str(a) for a in args], self.env(rec, **env), timeout=120)
        self.assert_ran(r, rc)
        return r, rec

    def assert_same_output(self, r, args, rc=0):
        """the same program built without instrumentation prints the same"""
        p = run([plain_hostile()] + [str(a) for a in args], self.env(), timeout=120)
        self.assert_ran(p, rc)
        self.assertEqual(r.stdout, p.stdout)


class TestThreadChurn(HostileCase):
    def test_threads_start_and_end_continuously_under_fast_flushes(self):
        """2,000 threads, 64 alive at any time, each replaced as it ends, flushing every 0.1 s: exact"""
        # Each thread sleeps 40 ms, so the run lasts over 1.2 s: the first
        # send loads libcurl, which takes a good part of a second under ASan.
        args = ["churn", 64, 2000, 1000, 40]
        r, rec = self.hostile_run(args, CODENSM_FLUSH_INTERVAL="0.1")
        self.assertEqual(r.stdout, "churn: 2000 threads of 64 x 1000\n")
        t = Totals(rec.committed())
        self.assert_exact(t, {"hostile.host_churn_thread": (2000, 0),
                              "hostile.host_work": (2000 * 1000, 0), "hostile.work": (2000, 0),
                              "hostile.churn": (1, 0), "hostile.main": (1, 0)})
        self.assertEqual(t.edges[("hostile.work", "hostile.host_work")], 2000 * 1000)
        self.assertGreaterEqual(t.bodies, 3, "flushes while the threads ran (%.1f s)" % r.seconds)


class TestExitFromThread(HostileCase):
    def test_a_worker_calling_exit(self):
        """exit(3) from a worker while main waits: the worker's open calls are counted, main's is not"""
        r, rec = self.hostile_run(["thread-exit", 500], rc=3)
        self.assert_same_output(r, ["thread-exit", 500], rc=3)
        self.assertEqual(r.stdout, "thread-exit: 500\n")
        self.assert_exact(Totals(rec.committed()), {
            "hostile.host_work": (500, 0), "hostile.host_worker": (1, 0),
            "hostile.host_quit": (1, 0), "hostile.host_leave": (1, 0), "hostile.work": (1, 0)})
        self.assertEqual(self.spooled(), [])


@unittest.skipIf(SANITIZER == "asan", "gcc 12's ASan allocator has no fork handlers: a child forked "
                 "while the flusher thread allocates can deadlock in its first malloc")
class TestForkExec(HostileCase):
    def test_fork_then_exec(self):
        """fork() + exec of an instrumented program: two runtimes, two pids, each call once"""
        r, rec = self.hostile_run(["fork-exec", 700], CODENSM_FLUSH_INTERVAL="0.1")
        self.assertEqual(r.stdout, "fork-exec: 700\nchild: 700\nchild exit 0\n")
        t = Totals(rec.committed())
        self.assert_exact(t, {"hostile.host_work": (3 * 700, 0), "hostile.host_spawn": (1, 0),
                              "hostile.work": (3, 0), "hostile.main": (2, 0)})
        self.assertEqual(len({m.get("pid") for m in t.metas}), 2, "bodies from both processes")


@unittest.skipIf(SANITIZER, "the sanitizer owns SIGABRT")
class TestAbort(HostileCase):
    def test_abort_is_counted_spooled_and_resent(self):
        """abort() deep in tracked calls: the program still dies of SIGABRT, each open call is
        one error, one incident, and a later run delivers it all exactly once"""
        rec = self.receiver()
        dead = self.env("http://127.0.0.1:9/codensm/ingest", CODENSM_INCLUDE="hostile")
        r = run([hostile(), "abort", "300"], dead)
        self.assertEqual(r.returncode, -signal.SIGABRT, r)
        self.assertEqual(r.stdout, "abort: 300\n")
        self.assertGreaterEqual(len(self.spooled()), 1, "a spool file after the abort")
        r2 = run([hostile(), "none"], self.env(rec, CODENSM_INCLUDE="hostile"))
        self.assert_ran(r2)
        self.assertEqual(self.spooled(), [])
        t = Totals(rec.committed())
        self.assert_exact(t, {"hostile.host_work": (300, 0), "hostile.host_outer": (1, 1),
                              "hostile.host_abort": (1, 1), "hostile.main": (2, 1),
                              "hostile.work": (1, 0)})
        self.assertEqual(t.incident_counts("signal"), {
            ("signal", ("hostile.main", "hostile.host_outer", "hostile.host_abort")): 1})
        self.assertEqual([i["signal"] for i in t.incidents if i["kind"] == "signal"],
                         [signal.SIGABRT])


class TestSignalHandlers(HostileCase):
    def test_instrumented_handler_raised_from_tracked_code(self):
        """a tracked function that is also the SIGUSR1 handler: its calls and its callee's are exact"""
        n = 1000
        r, rec = self.hostile_run(["signal", n])
        self.assert_same_output(r, ["signal", n])
        self.assertEqual(r.stdout, "signal: %d handled %d\n" % (n, n // 10))
        t = Totals(rec.committed())
        self.assert_exact(t, {"hostile.host_work": (n, 0), "hostile.host_raiser": (n // 10, 0),
                              "hostile.host_on_signal": (n // 10, 0),
                              "hostile.host_handler_work": (n // 10, 0), "hostile.main": (1, 0)})
        self.assertEqual(t.edges[("hostile.host_raiser", "hostile.host_on_signal")], n // 10)
        self.assertEqual(t.edges[("hostile.main", "hostile.host_work")], n)

    def test_handler_interrupting_at_any_instruction(self):
        """SIGALRM every 200 us runs a tracked handler anywhere, inside the hooks too: the
        interrupted calls stay exact, the stack stays sound, and a handler call is counted
        at most once (one that interrupted a hook itself is not counted)"""
        r, rec = self.hostile_run(["itimer", 400])
        m = re.fullmatch(r"itimer: (\d+) calls, (\d+) alarms\n", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        calls, alarms = int(m.group(1)), int(m.group(2))
        self.assertGreater(alarms, 10, "alarms arrived while the loop ran")
        t = Totals(rec.committed())
        self.assertEqual(t.counts("hostile.host_work"), {"hostile.host_work": (calls, 0)})
        self.assertEqual(t.edges[("hostile.main", "hostile.host_work")], calls)
        self.assertEqual(t.counts("hostile.main"), {"hostile.main": (1, 0)})
        counted = t.fns.get("hostile.host_on_alarm", {}).get("calls", 0)
        self.assertLessEqual(counted, alarms)
        self.assertEqual(sum(c for (a, b), c in t.edges.items() if b == "hostile.host_on_alarm"),
                         counted, "each counted handler call has one caller")
        self.assertEqual(sum(m.get("repairs", 0) for m in t.metas), 0, "no stack repairs")


class TestDeepRecursion(HostileCase):
    def test_recursion_ten_times_deeper_than_the_stack(self):
        """5,000-deep recursion (the shadow stack holds 512): every call counted, the error
        marked in the innermost call is counted, and the stack is sound afterwards"""
        d = 5000
        r, rec = self.hostile_run(["deep", d])
        self.assertEqual(r.stdout, "deep: %d\n" % d)
        t = Totals(rec.committed())
        self.assert_exact(t, {"hostile.host_recurse": (3 * (d + 1), 3),
                              "hostile.host_after": (1, 0), "hostile.main": (1, 0)})
        self.assertEqual(t.edges[("hostile.main", "hostile.host_after")], 1)
        self.assertEqual(t.edges[("hostile.main", "hostile.host_recurse")], 3)
        self.assertEqual(sum(m.get("repairs", 0) for m in t.metas), 0, "no stack repairs")


class TestLibraryReplaced(Case):
    def test_another_library_at_the_address_of_a_closed_one(self):
        """alpha dlclose()d and beta loaded where it was: beta's calls carry beta's names"""
        cwd = os.path.join(PROGS, "plugins")
        alpha = compile_prog("libalpha.so", ["alpha/entry.c"], cwd=cwd, shared=True)
        beta = compile_prog("libbeta.so", ["beta/entry.c"], cwd=cwd, shared=True)
        loader = compile_prog("loader", ["loader.c"], instrument=False, link=rt_link())
        rec = self.receiver()
        r = run([loader, "250", alpha, beta, alpha], self.env(rec, CODENSM_INCLUDE="alpha,beta"))
        self.assert_ran(r)
        addrs = [line.split(" at ")[1] for line in r.stdout.splitlines()]
        self.assertEqual(len(set(addrs)), 1, "the libraries shared one address: %s" % r.stdout)
        t = Totals(rec.committed())
        self.assert_exact(t, {"alpha.entry.plugin_entry": (2, 0), "alpha.entry.alpha_step": (500, 0),
                              "beta.entry.plugin_entry": (1, 0), "beta.entry.beta_step": (250, 0)})
        self.assertEqual(t.edges[("beta.entry.plugin_entry", "beta.entry.beta_step")], 250)
        self.assertEqual(t.edges[("alpha.entry.plugin_entry", "alpha.entry.alpha_step")], 500)
        self.assertEqual(t.fns["beta.entry.beta_step"]["file"], "beta/entry.c")


class TestGuardrails(Case):
    """4,100 distinct functions: 4,000 are tracked (main among them), the calls of
    the rest are dropped and counted in _meta.dropped; the 4,000 do not fit one
    body of at most 2,000 functions, so the flush is split."""

    N = 4100

    @classmethod
    def many(cls):
        src_dir = os.path.join(os.path.dirname(hostile()), "many-src")
        os.makedirs(src_dir, exist_ok=True)
        path = os.path.join(src_dir, "many.c")
        if not os.path.exists(path):
            with open(path + ".tmp", "w") as f:
                f.write("/* generated by test_hostile.py */\nvolatile long sink;\n")
                for i in range(cls.N):
                    f.write("void many_f%d(void) { sink += %d; }\n" % (i, i))
                f.write("static void (*const fns[])(void) = {\n")
                f.write(",\n".join("many_f%d" % i for i in range(cls.N)))
                f.write("\n};\nint main(void)\n{\n\tfor (int i = 0; i < %d; i++)\n"
                        "\t\tfor (int k = 0; k <= i %% 3; k++)\n\t\t\tfns[i]();\n"
                        "\treturn 0;\n}\n" % cls.N)
            os.rename(path + ".tmp", path)
        return compile_prog("many", ["many.c"], cwd=src_dir, flags=["-O0"])

    def test_more_functions_than_the_guardrails(self):
        """4,100 functions: 4,000 tracked and exact, the rest's calls counted as dropped,
        no body holds more than 2,000 functions"""
        rec = self.receiver()
        r = run([self.many()], self.env(rec, CODENSM_INCLUDE="many"), timeout=120)
        self.assert_ran(r)
        t = Totals(rec.committed())
        # main is seen first, then many_f0, many_f1, ... in order of first call.
        tracked = 4000 - 1
        exp = {"many.many_f%d" % i: (i % 3 + 1, 0) for i in range(tracked)}
        exp["many.main"] = (1, 0)
        self.assert_exact(t, exp)
        self.assertEqual(sum(m.get("dropped", 0) for m in t.metas),
                         sum(i % 3 + 1 for i in range(tracked, self.N)))
        sizes = [len(b.get("functions", [])) for b in rec.committed()]
        self.assertLessEqual(max(sizes), 2000, sizes)
        self.assertGreaterEqual(len(sizes), 2, "the flush was split: %s" % sizes)


if __name__ == "__main__":
    unittest.main()
