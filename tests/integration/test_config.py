"""test_config.py: garbage in any CODENSM_* variable costs one line on
stderr naming the variable, never the program's output or exit status."""
import os
import re
import shutil
import subprocess
import unittest

from harness import Case, Totals, compile_prog, rt_link, run, sample, sample_expect_shop

N = 200
GARBAGE = {
    "CODENSM_API_KEY": "cnsm_\u00e9t\u00e9",
    "CODENSM_ENDPOINT": "ftp://example.invalid/ingest",
    "CODENSM_INCLUDE": "checkout,pay ments",
    "CODENSM_EXCLUDE": "legacy;rm -rf",
    "CODENSM_DEPARTMENT": "checkout",
    "CODENSM_WEIGHTS": "checkout=heavy",
    "CODENSM_SERVICE": "",
    "CODENSM_SPOOL_DIR": "relative/spool",
    "CODENSM_SOURCE_ROOT": "",
    "CODENSM_CA_FILE": "",
    "CODENSM_SYMBOL_CACHE": "relative/cache",
    "CODENSM_FLUSH_INTERVAL": "soon",
    "CODENSM_DISABLE": "maybe",
    "CODENSM_LOG": "loud",
}


class TestGarbage(Case):
    def setUp(self):
        super().setUp()
        self.plain = run([sample("shop-plain"), str(N)], self.env()).stdout

    def check(self, var, value):
        rec = self.receiver()
        env = self.env(rec, CODENSM_INCLUDE="checkout,payments,inventory,legacy")
        env[var] = value
        r = run([sample("shop"), str(N)], env, timeout=30)
        self.assertEqual(r.returncode, 0, "%s=%r: %r" % (var, value, r))
        self.assertEqual(r.stdout, self.plain, "%s=%r changed the output" % (var, value))
        lines = [ln for ln in r.stderr.splitlines() if var in ln]
        self.assertEqual(len(lines), 1, "%s=%r: stderr lines naming it:\n%s" % (var, value, r.stderr))
        return rec, r

    def test_each_variable(self):
        """each CODENSM_* variable with garbage: one stderr line naming it, output unchanged"""
        for var, value in GARBAGE.items():
            with self.subTest(var=var):
                self.check(var, value)

    def test_garbage_keeps_defaults(self):
        """a garbage weight or department keeps the default, and counting goes on exactly"""
        for var in ("CODENSM_WEIGHTS", "CODENSM_DEPARTMENT", "CODENSM_FLUSH_INTERVAL",
                    "CODENSM_DISABLE", "CODENSM_LOG", "CODENSM_EXCLUDE"):
            with self.subTest(var=var):
                rec, r = self.check(var, GARBAGE[var])
                t = Totals(rec.committed())
                self.assert_exact(t, sample_expect_shop(N))
                for name, e in t.fns.items():
                    self.assertEqual((e["departments"], e["weights"]), ({name.split(".")[0]}, {1}))

    def test_all_at_once(self):
        """garbage in every variable at once: output and exit status unchanged, one line each"""
        env = self.env()
        env.update(GARBAGE)
        r = run([sample("shop"), str(N)], env, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, self.plain), repr(r))
        for var in GARBAGE:
            n = len([ln for ln in r.stderr.splitlines() if var + "=" in ln])
            self.assertEqual(n, 1, "%s in stderr:\n%s" % (var, r.stderr))

    def test_quiet(self):
        """CODENSM_LOG=quiet silences the complaints"""
        env = self.env(CODENSM_LOG="quiet", CODENSM_WEIGHTS="checkout=heavy",
                       CODENSM_ENDPOINT="http://127.0.0.1:9/x")
        r = run([sample("shop"), str(N)], env, timeout=30)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, self.plain, ""))


class TestClock(Case):
    def test_the_tsc_times_calls_where_the_cpu_says_it_is_invariant(self):
        """CODENSM_LOG=debug names the clock: the TSC on an x86 CPU whose flags say it is invariant"""
        r = run([sample("shop"), str(N)], self.env(CODENSM_LOG="debug"), timeout=30)
        self.assertEqual(r.returncode, 0, repr(r))
        lines = [ln for ln in r.stderr.splitlines() if ln.startswith("codensm: timing with ")]
        self.assertEqual(len(lines), 1, r.stderr)
        flags = set()
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("flags"):
                    flags = set(ln.split(":", 1)[1].split())
                    break
        if {"constant_tsc", "nonstop_tsc"} <= flags:
            # Every invariant TSC rate from 335 MHz up has a histogram table (test_hist.c).
            self.assertRegex(lines[0], r"^codensm: timing with the TSC \(\d+\.\d{3} GHz\)$")
        else:
            self.assertEqual(lines[0], "codensm: timing with CLOCK_MONOTONIC "
                             "(no invariant TSC of 335 MHz to 20 GHz)")


class TestWithoutLibdw(Case):
    """libdw is loaded on the first function the symbol cache does not name;
    where it cannot be, functions are named by module and offset, with one
    line on stderr, and every count stays exact."""

    def shop_counts(self, libdir=None):
        rec = self.receiver()
        extra = {"LD_LIBRARY_PATH": libdir} if libdir else {}
        r = run([sample("shop"), str(N)], self.env(rec, CODENSM_SYMBOL_CACHE="off", **extra),
                timeout=30)
        self.assertEqual(r.returncode, 0, repr(r))
        return Totals(rec.committed()).counts(), r

    def check(self, libdir, line):
        named, plain = self.shop_counts()
        self.assertIn("checkout.cart.cart_total", named)
        by_offset, r = self.shop_counts(libdir)
        mine = [ln for ln in r.stderr.splitlines() if "libdw" in ln]
        self.assertEqual(len(mine), 1, r.stderr)
        self.assertRegex(mine[0], line)
        self.assertEqual(r.stdout, plain.stdout)
        self.assertFalse([n for n in by_offset if not re.fullmatch(r"shop\+0x[0-9a-f]+", n)],
                         sorted(by_offset))
        # the same functions, the same (calls, errors) each: only the names differ
        self.assertEqual(sorted(by_offset.values()), sorted(named.values()))

    def test_a_library_that_is_not_libdw(self):
        """a libdw.so.1 first on LD_LIBRARY_PATH that lacks libdw's functions"""
        d = os.path.join(self.tmp, "fake")
        os.makedirs(d)
        with open(os.path.join(d, "fake.c"), "w") as f:
            f.write("int codensm_not_libdw;\n")
        subprocess.run(["cc", "-shared", "-fPIC", "-Wl,-soname,libdw.so.1", "-o",
                        os.path.join(d, "libdw.so.1"), os.path.join(d, "fake.c")], check=True)
        self.check(d, r"^codensm: cannot use libdw\.so\.1: it has no dwarf_attr; "
                      r"naming functions by module and offset$")

    def test_a_damaged_libdw(self):
        """a libdw.so.1 first on LD_LIBRARY_PATH that is not an ELF file"""
        d = os.path.join(self.tmp, "damaged")
        os.makedirs(d)
        with open(os.path.join(d, "libdw.so.1"), "w") as f:
            f.write("not a library\n")
        self.check(d, r"^codensm: cannot load libdw\.so\.1 \(.*libdw\.so\.1: .+\): naming functions "
                      r"by module and offset; install elfutils' libdw \(Debian: libdw1\) for names, "
                      r"files and lines$")


class TestRelativeLibraryPath(Case):
    """A library found through a relative LD_LIBRARY_PATH has a relative
    name in the dynamic loader; the program may change folder before its
    first call into it, as daemons do."""

    def test_names_come_from_dwarf_after_a_chdir(self):
        """roamer chdir()s to / before its first call into lib/libstepper.so: stride is named from its DWARF, exact, in both the cold and the warm run"""
        lib = os.path.join(self.tmp, "lib")
        os.makedirs(lib)
        so = compile_prog("libstepper.so", ["stepper.c"], shared=True)
        shutil.copy(so, lib)
        prog = compile_prog("roamer", ["roamer.c"],
                            link=["-L" + lib, "-lstepper"] + rt_link())
        for run_no in (1, 2):
            rec = self.receiver()
            r = run([prog, "30"], self.env(rec, CODENSM_INCLUDE="stepper", LD_LIBRARY_PATH="lib",
                                           CODENSM_LOG="debug"), cwd=self.tmp)
            self.assertEqual(r.returncode, 0, repr(r))
            self.assertEqual(r.stdout, "roamer: 30 strides\n")
            self.assert_exact(Totals(rec.committed()), {"stepper.stride": (30, 0)})
            mine = [ln for ln in r.stderr.splitlines() if "libstepper.so: " in ln]
            self.assertEqual(len(mine), 1, r.stderr)
            self.assertIn("symbols of " + os.path.join(lib, "libstepper.so") + ": ", mine[0])
            self.assertIn(" from DWARF, kept in " if run_no == 1 else " from " + self.tmp, mine[0])


class TestSymbolCache(Case):
    """The index of a program's functions is read from DWARF once per build
    and kept under XDG_CACHE_HOME; later runs read the file instead."""

    def shop_run(self, **env):
        return self.shop_run_stderr(**env)[0]

    def shop_run_stderr(self, **env):
        rec = self.receiver()
        r = run([sample("shop"), str(N)], self.env(rec, CODENSM_LOG="debug",
                CODENSM_INCLUDE="checkout,payments,inventory,legacy", **env), timeout=30)
        self.assertEqual(r.returncode, 0, repr(r))
        self.assert_exact(Totals(rec.committed()), sample_expect_shop(N))
        return [ln for ln in r.stderr.splitlines() if ln.startswith("codensm: symbols of ")], r.stderr

    def test_a_warm_run_never_loads_libdw(self):
        """the dynamic loader's own account (LD_DEBUG=files): run 1 loads libdw to read DWARF, run 2 names every function from the cache without it"""
        def loaded(stderr):
            return set(re.findall(r"file=(\S+) \[0\];  (?:needed|dynamically loaded) by", stderr))
        first, err = self.shop_run_stderr(LD_DEBUG="files")
        self.assertIn("libdw.so.1", loaded(err))
        self.assertIn("libelf.so.1", loaded(err))
        second, err = self.shop_run_stderr(LD_DEBUG="files")
        self.assertEqual([ln for ln in second if "/shop: " in ln],
                         [ln.replace(" from DWARF, kept in ", " from ") for ln in first if "/shop: " in ln])
        # libz is not in the list: the system's libcurl brings it at the send.
        self.assertFalse(loaded(err) & {"libdw.so.1", "libelf.so.1", "liblzma.so.5"},
                         sorted(loaded(err)))

    def test_the_second_run_reads_the_cache(self):
        """run 1 indexes DWARF and writes the cache, run 2 reads it: both count exactly"""
        first = self.shop_run()
        shop = [ln for ln in first if "/shop: " in ln]
        self.assertEqual(len(shop), 1, first)
        self.assertRegex(shop[0], r"^codensm: symbols of \S+/shop: \d+ functions from DWARF, "
                         r"kept in " + re.escape(self.tmp) + r"/codensm/symbols/[0-9a-f]{16,}-[0-9a-f]{16}\.idx$")
        path = shop[0].rsplit(" ", 1)[1]
        self.assertEqual(oct(os.stat(path).st_mode & 0o777), "0o600")
        self.assertEqual(oct(os.stat(os.path.dirname(path)).st_mode & 0o777), "0o700")
        second = [ln for ln in self.shop_run() if "/shop: " in ln]
        self.assertEqual(second, [shop[0].replace(" from DWARF, kept in ", " from ")])

    def test_a_damaged_file_is_said_and_replaced(self):
        """a cache file with one byte flipped: counts exact, the debug line says it was replaced, the next run reads it"""
        shop = [ln for ln in self.shop_run() if "/shop: " in ln]
        path = shop[0].rsplit(" ", 1)[1]
        with open(path, "r+b") as f:
            f.seek(40)
            b = f.read(1)
            f.seek(40)
            f.write(bytes([b[0] ^ 0x10]))
        second = [ln for ln in self.shop_run() if "/shop: " in ln]
        self.assertEqual(second, [shop[0] + " (the file there could not be used: replaced)"])
        third = [ln for ln in self.shop_run() if "/shop: " in ln]
        self.assertEqual(third, [shop[0].replace(" from DWARF, kept in ", " from ")])

    def test_off_writes_nothing(self):
        """CODENSM_SYMBOL_CACHE=off: every run reads DWARF and nothing is written"""
        for _ in range(2):
            lines = self.shop_run(CODENSM_SYMBOL_CACHE="off")
            self.assertTrue(lines)
            self.assertFalse([ln for ln in lines if " functions from DWARF" not in ln
                              or "kept in" in ln or "cannot write" in ln], lines)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "codensm")))

    def test_a_program_without_a_build_id_is_not_cached(self):
        """linked with --build-id=none: nothing would tell a stale index, so none is kept"""
        prog = compile_prog("errors-no-build-id", ["errors.c"],
                            link=rt_link() + ["-Wl,--build-id=none"])
        for _ in range(2):
            rec = self.receiver()
            r = run([prog, "8"], self.env(rec, CODENSM_LOG="debug", CODENSM_INCLUDE="errors"))
            self.assertEqual(r.returncode, 0, repr(r))
            mine = [ln for ln in r.stderr.splitlines() if "errors-no-build-id: " in ln]
            self.assertEqual(len(mine), 1, r.stderr)
            self.assertRegex(mine[0], r"^codensm: symbols of \S+: \d+ functions from DWARF "
                             r"\(no build-id: not cached\)$")
            self.assertEqual(Totals(rec.committed()).counts("errors.err_twice"),
                             {"errors.err_twice": (8, 8)})
        d = os.path.join(self.tmp, "codensm", "symbols")
        cached = os.listdir(d) if os.path.isdir(d) else []  # other modules' may be there
        self.assertFalse([f for f in cached if b"err_twice" in open(os.path.join(d, f), "rb").read()],
                         cached)

    def test_an_unwritable_cache_costs_one_debug_line(self):
        """a cache folder that cannot be made: names and counts unchanged, said at debug level only"""
        lines = self.shop_run(CODENSM_SYMBOL_CACHE="/proc/codensm-cannot")
        shop = [ln for ln in lines if "/shop: " in ln]
        self.assertEqual(len(shop), 1, lines)
        self.assertIn("functions from DWARF; cannot write /proc/codensm-cannot/", shop[0])


if __name__ == "__main__":
    unittest.main()
