"""test_doctor.py: `codensm doctor` tells in plain words whether a binary
is instrumented, whether its hooks reach libcodensm-rt or glibc's empty
ones, whether it has debug info, and what CODENSM_* would track."""
import glob
import os
import shutil
import subprocess
import unittest

from harness import BUILD, LIB, SAMPLES_SRC, SAN_FLAGS, Case, Totals, clean_env, decl_line, run, sample

DOCTOR = os.path.join(BUILD, "bin", "codensm")
SHOP_OBJ = os.path.join(BUILD, "obj", "samples", "shop")


def table(stdout):
    """{name: (department, weight, source)} from the doctor's table."""
    rows, on = {}, False
    for line in stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["NAME", "DEPARTMENT"]:
            on = True
        elif on and len(parts) == 4 and line.startswith("  "):
            rows[parts[0]] = (parts[1], float(parts[2]), parts[3])
        elif on:
            on = False
    return rows


class DoctorCase(Case):
    def setUp(self):
        super().setUp()
        if not os.path.exists(DOCTOR):
            self.skipTest("%s not built" % DOCTOR)
        if not os.path.exists(sample("shop")):
            self.skipTest("samples not built")

    def doctor(self, path, **env):
        return run([DOCTOR, "doctor", path], clean_env(**env))

    def glibc_bound(self):
        """The shop's objects linked the way that silently loses the hooks:
        -lcodensm-rt before the objects, --as-needed, no -u flags."""
        out = os.path.join(self.tmp, "shop-glibc")
        objs = sorted(glob.glob(os.path.join(SHOP_OBJ, "**", "*.o"), recursive=True))
        subprocess.run(["cc", "-Wl,--as-needed", "-L" + LIB, "-Wl,-rpath," + LIB, "-lcodensm-rt",
                        "-o", out] + objs + SAN_FLAGS + ["-pthread"], check=True)
        return out


class TestDoctor(DoctorCase):
    def test_instrumented_program_is_fine(self):
        """doctor on the shop: instrumented, hooks bound to libcodensm-rt, debug info; exit 0"""
        r = self.doctor(sample("shop"))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("instrumented: yes", r.stdout)
        self.assertIn("hooks: bound to libcodensm-rt", r.stdout)
        self.assertIn("debug info: yes", r.stdout)
        self.assertEqual(r.stderr, "")

    def test_lists_tracked_functions_as_the_runtime_names_them(self):
        """doctor lists exactly the functions CODENSM_INCLUDE/EXCLUDE select, with departments, weights, file:line"""
        r = self.doctor(sample("shop"), CODENSM_INCLUDE="checkout,payments",
                        CODENSM_EXCLUDE="checkout.coupons",
                        CODENSM_DEPARTMENT="payments=finance", CODENSM_WEIGHTS="checkout=9")
        self.assertEqual(r.returncode, 0, r)
        src = os.path.join(SAMPLES_SRC, "shop")

        def at(f, fn):
            return "%s:%d" % (f, decl_line(os.path.join(src, f), fn))
        self.assertEqual(table(r.stdout), {
            "checkout.order.place_order": ("checkout", 9, at("checkout/order.c", "place_order")),
            "checkout.cart.cart_total": ("checkout", 9, at("checkout/cart.c", "cart_total")),
            "checkout.cart.cart_add_item": ("checkout", 9, at("checkout/cart.c", "cart_add_item")),
            "payments.card.card_charge": ("finance", 1, at("payments/card.c", "card_charge")),
            "payments.card.card_authorize": ("finance", 1, at("payments/card.c", "card_authorize")),
        })

    def test_says_how_calls_are_timed(self):
        """doctor says whether calls are clocked exactly or sampled, with the rate and the threshold"""
        r = self.doctor(sample("shop"))
        self.assertIn("timing: exact, every call clocked", r.stdout)
        r = self.doctor(sample("shop"), CODENSM_SAMPLE="16", CODENSM_SAMPLE_BELOW_NS="250")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("timing: sampled (CODENSM_SAMPLE=16): a function whose calls on a thread average"
                      " under 250 ns is clocked on 1 call in 16", r.stdout)

    def test_static_and_ldflags_variants_are_fine(self):
        """doctor on the static and the LDFLAGS-first shop: hooks reach the runtime; exit 0"""
        for v in ("shop-static", "shop-ldflags"):
            with self.subTest(variant=v):
                r = self.doctor(sample(v))
                self.assertEqual(r.returncode, 0, r)
                self.assertIn("hooks: bound to libcodensm-rt", r.stdout)

    def test_uninstrumented_program(self):
        """doctor on the plain shop: one problem line, not instrumented; exit 1"""
        r = self.doctor(sample("shop-plain"))
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("instrumented: no", r.stdout)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("not instrumented", lines[0])
        self.assertIn("-finstrument-functions", lines[0])

    def test_hooks_bound_to_glibc(self):
        """doctor on a binary whose hooks bind to glibc: one problem line naming glibc; exit 1"""
        prog = self.glibc_bound()
        r = self.doctor(prog)
        self.assertEqual(r.returncode, 1, r)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("glibc", lines[0])
        self.assertIn("pkg-config --libs codensm-rt", lines[0])

    def test_glibc_binding_is_real(self):
        """the glibc-bound binary really binds to libc (LD_DEBUG agrees) and delivers nothing"""
        prog = self.glibc_bound()
        env = self.env(self.receiver(), LD_DEBUG="bindings", CODENSM_INCLUDE="checkout")
        r = run([prog, "100"], env)
        self.assert_ran(r)
        binds = [ln for ln in r.stderr.splitlines()
                 if "`__cyg_profile_func_enter'" in ln and "binding file" in ln]
        self.assertTrue(binds, r.stderr[-2000:])
        self.assertIn("libc.so", binds[0])
        rec = self.receiver()
        r = run([prog, "100"], self.env(rec, CODENSM_INCLUDE="checkout"))
        self.assertEqual(Totals(rec.committed()).counts(), {})

    def test_no_debug_info(self):
        """doctor on a stripped copy of the shop: a problem line about debug info; exit 1"""
        prog = os.path.join(self.tmp, "shop-stripped")
        shutil.copy(sample("shop"), prog)
        subprocess.run(["strip", "--strip-debug", prog], check=True)
        r = self.doctor(prog)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("debug info: no", r.stdout)
        self.assertEqual(len([ln for ln in r.stderr.splitlines() if "debug info" in ln]), 1, r.stderr)

    def test_include_selects_nothing(self):
        """doctor with an include that matches nothing: a problem line; exit 1"""
        r = self.doctor(sample("shop"), CODENSM_INCLUDE="checkoutx")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("tracked: 0 of", r.stdout)
        self.assertIn("no function", r.stderr)

    def test_malformed_setting(self):
        """doctor with a malformed CODENSM_WEIGHTS names it and exits 1"""
        r = self.doctor(sample("shop"), CODENSM_WEIGHTS="checkout=heavy")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("CODENSM_WEIGHTS", r.stderr)

    def test_plugin_library(self):
        """doctor on the dlopen'ed plugin: its hooks bind to the loading program; exit 0"""
        r = self.doctor(sample("libdiscounts.so"))
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("shared library", r.stdout)
        self.assertIn("discounts.rules.rule_apply", table(r.stdout))

    def test_not_an_elf_file(self):
        """doctor on a text file or a missing file: one line, exit 1"""
        for path in (os.path.join(SAMPLES_SRC, "shop", "main.c"), "/nonexistent/prog"):
            with self.subTest(path=path):
                r = self.doctor(path)
                self.assertEqual(r.returncode, 1, r)
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertIn(path, r.stderr)

    def test_cpp_names(self):
        """doctor on the C++ sample lists qualified names and leaves the standard library out"""
        r = self.doctor(sample("geometry"))
        self.assertEqual(r.returncode, 0, r)
        names = table(r.stdout)
        self.assertIn("shapes.solids.geo::validate", names)
        self.assertIn("main.process", names)
        self.assertFalse([n for n in names if n.startswith("std::") or "::std::" in n], names)


if __name__ == "__main__":
    unittest.main()
