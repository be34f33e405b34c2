"""test_start_and_stop.py: the runtime's start and stop as a program
meets them: tracked calls from C++ static initialisers before main (also
before the runtime's own constructor, with the static runtime), calls
after codensm_shutdown() and after a new codensm_init(), and libcurl
loaded only when something is first sent."""
import re
import unittest

from harness import Case, Totals, compile_prog, rt_link, run

EXPECT = {"staticinit.Early::Early": (1, 0), "staticinit.early_work": (50, 0),
          # g++'s functions that run the unit's static initialisers
          "staticinit._GLOBAL__sub_I__Z10early_worki": (1, 0),
          "staticinit.__static_initialization_and_destruction_0": (1, 0),
          "staticinit.during": (20, 0), "staticinit.after_reinit": (40, 0)}


def loaded(stderr):
    """{file name: how it was loaded} from LD_DEBUG=files."""
    return dict(re.findall(r"file=\S*?([^/\s]+) \[0\];  (needed|dynamically loaded) by", stderr))


class TestStartAndStop(Case):
    def staticinit(self, static):
        name = "staticinit-static" if static else "staticinit"
        prog = compile_prog(name, ["staticinit.cpp"], link=rt_link(static=static))
        rec = self.receiver()
        r = run([prog], self.env(rec, CODENSM_INCLUDE="staticinit"))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "staticinit: early 50, init 0\n")
        self.assertEqual(self.spooled(), [])
        counts = Totals(rec.committed()).counts()
        counts.pop("staticinit.main", None)  # begun before the shutdown, ended after the new init
        self.assertEqual(counts, EXPECT, "(calls, errors); last run %r" % r)

    def test_static_initialisers_shutdown_and_init_again(self):
        """calls from a static initialiser before main counted; none between codensm_shutdown() and codensm_init(); all after it"""
        self.staticinit(static=False)

    def test_static_initialisers_before_the_runtimes_constructor(self):
        """the same with the static runtime, whose constructor runs after the program's static initialisers"""
        self.staticinit(static=True)

    def test_libcurl_is_loaded_at_the_first_send_only(self):
        """the dynamic loader's own account (LD_DEBUG=files): without a key no libcurl is loaded; with one, libcurl.so.4 is dlopened after main began, not needed at start-up"""
        # The static runtime sends through the system's libcurl.so.4.
        prog = compile_prog("ticker-static", ["ticker.c"], link=rt_link(static=True))
        r = run([prog, "5", "10"], self.env(None, CODENSM_API_KEY=None, CODENSM_INCLUDE="ticker",
                                             LD_DEBUG="files"))
        self.assert_ran(r)
        self.assertFalse([f for f in loaded(r.stderr) if "curl" in f], sorted(loaded(r.stderr)))
        rec = self.receiver()
        r = run([prog, "5", "10"], self.env(rec, CODENSM_INCLUDE="ticker", LD_DEBUG="files"))
        self.assert_ran(r)
        self.assertEqual(loaded(r.stderr).get("libcurl.so.4"), "dynamically loaded",
                         sorted(loaded(r.stderr).items()))
        main_at = r.stderr.index("transferring control:")
        curl_at = re.search(r"file=\S*libcurl\.so\.4 \[0\];  dynamically loaded", r.stderr).start()
        self.assertLess(main_at, curl_at, "libcurl loaded before main began")
        self.assertEqual(Totals(rec.committed()).counts("ticker.tick_work"),
                         {"ticker.tick_work": (50, 0)})


if __name__ == "__main__":
    unittest.main()
