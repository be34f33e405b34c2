"""test_server.py: the happy path end to end with the real codensm-server:
the shop's calls arrive through ingest and its API serves them exactly;
`codensm report` prints them."""
import json
import os
import re
import subprocess
import time
import unittest
import urllib.request

from harness import BUILD, SAMPLES_SRC, Case, clean_env, decl_line, run, sample, sample_expect_shop

SERVER = os.path.join(BUILD, "bin", "codensm-server")
CLI = os.path.join(BUILD, "bin", "codensm")
N = 1000


class TestRealServer(Case):
    def setUp(self):
        super().setUp()
        if not os.path.exists(SERVER):
            self.skipTest("%s not built" % SERVER)
        if not os.path.exists(sample("shop")):
            self.skipTest("samples not built")
        db = os.path.join(self.tmp, "codensm.db")
        p = subprocess.run([SERVER, "project", "create", "shop", "--db", db],
                           capture_output=True, text=True, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.ingest_key = re.search(r"ingest key: (\S+)", p.stdout).group(1)
        self.view_key = re.search(r"dashboard key: (\S+)", p.stdout).group(1)
        # Its stderr is kept and read at the end: an ASan+UBSan build (the
        # sanitizers suite runs these tests against build-asan/) reports there.
        self.srv_log = os.path.join(self.tmp, "server.log")
        with open(self.srv_log, "w") as log:
            self.srv = subprocess.Popen([SERVER, "--listen", "127.0.0.1:0", "--db", db],
                                        stdout=subprocess.PIPE, stderr=log,
                                        text=True, env=clean_env())
        line = self.srv.stdout.readline()
        m = re.search(r"http://([\d.]+):(\d+)", line)
        self.assertTrue(m, "first line of codensm-server: %r" % line)
        self.base = "http://%s:%s" % m.groups()

    def tearDown(self):
        if hasattr(self, "srv"):
            self.srv.terminate()
            rc = self.srv.wait(timeout=10)
            self.srv.stdout.close()
            with open(self.srv_log, errors="replace") as f:
                log = f.read()
            reports = [l for l in log.splitlines()
                       if "runtime error:" in l or "Sanitizer" in l or "SUMMARY: " in l]
            super().tearDown()
            self.assertEqual((rc, reports), (0, []),
                             "codensm-server's exit status on SIGTERM and its sanitizer reports; "
                             "stderr:\n" + log[-3000:])
            return
        super().tearDown()

    def api(self, path):
        req = urllib.request.Request(self.base + "/api/projects/shop/" + path,
                                     headers={"Authorization": "Bearer " + self.view_key})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def run_shop(self, **env):
        env = self.env(self.base + "/codensm/ingest", CODENSM_API_KEY=self.ingest_key,
                       CODENSM_INCLUDE="checkout,payments,inventory,legacy", **env)
        r = run([sample("shop"), str(N)], env)
        self.assert_ran(r)
        self.assertEqual(self.spooled(), [], "nothing left unsent")
        return r

    def test_functions_api_serves_exact_counts(self):
        """after one shop run the server's functions API has exact calls, errors, files and lines"""
        self.run_shop()
        rows = self.api("functions?window=1h&limit=500")["rows"]
        got = {r["name"]: (r["calls"], r["errors"]) for r in rows if r["calls"]}
        self.assertEqual(got, sample_expect_shop(N))
        by = {r["name"]: r for r in rows}
        card = by["payments.card.card_authorize"]
        self.assertEqual((card["file"], card["line"]),
                         ("payments/card.c",
                          decl_line(os.path.join(SAMPLES_SRC, "shop", "payments", "card.c"),
                                    "card_authorize")))

    def test_bodies_with_probes_are_taken_and_counts_stay_exact(self):
        """the server takes bodies that carry a probes array (it ignores the field): counts stay exact"""
        path = os.path.join(self.tmp, "probes.json")
        with open(path, "w") as f:
            json.dump({"charge": {"target": "payments.card.card_charge", "lifespan": 10,
                                  "lastmodified": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                time.gmtime(time.time() - 1)),
                                  "instrument": {"type": "hist"}}}, f)
        r = self.run_shop(CODENSM_PROBES=path, CODENSM_LOG="debug")
        self.assertNotIn("HTTP 4", r.stderr)
        rows = self.api("functions?window=1h&limit=500")["rows"]
        got = {r["name"]: (r["calls"], r["errors"]) for r in rows if r["calls"]}
        self.assertEqual(got, sample_expect_shop(N))

    def test_two_runs_add_up(self):
        """two shop runs: the server holds exactly twice the workload"""
        self.run_shop()
        self.run_shop()
        rows = self.api("functions?window=1h&limit=500")["rows"]
        got = {r["name"]: (r["calls"], r["errors"]) for r in rows if r["calls"]}
        self.assertEqual(got, {k: (2 * c, 2 * e) for k, (c, e) in sample_expect_shop(N).items()})

    def test_summary_and_nsm(self):
        """summary: calls, errors and NSM = sum of weight x (calls - errors)"""
        self.run_shop(CODENSM_WEIGHTS="checkout=9")
        s = self.api("summary?window=1h")
        exp = sample_expect_shop(N)
        self.assertEqual((s["calls"], s["errors"]),
                         (sum(c for c, e in exp.values()), sum(e for c, e in exp.values())))
        nsm = sum((9 if k.startswith("checkout.") else 1) * (c - e) for k, (c, e) in exp.items())
        self.assertAlmostEqual(s["nsm"], nsm, places=3)

    def test_incidents_and_underuse(self):
        """the declined cards are one incident counted N/50 times; export_xml is never called"""
        self.run_shop()
        inc = self.api("incidents?window=1h")["incidents"]
        chains = {tuple(c["name"] for c in i["chain"]): i["count"] for i in inc}
        self.assertEqual(chains, {("checkout.order.place_order", "payments.card.card_charge",
                                   "payments.card.card_authorize"): N // 50})
        under = self.api("underuse?window=1h")
        self.assertIn("legacy.export.export_xml", [f["name"] for f in under["never_called"]])

    def test_sampled_timing_is_labelled_end_to_end(self):
        """a shop run with CODENSM_SAMPLE=16: exact counts, its short functions' estimated calls on the server and marked in codensm report"""
        self.run_shop(CODENSM_SAMPLE="16")
        rows = self.api("functions?window=1h&limit=500")["rows"]
        got = {r["name"]: (r["calls"], r["errors"]) for r in rows if r["calls"]}
        self.assertEqual(got, sample_expect_shop(N))
        est = {r["name"]: r["estimated_calls"] for r in rows if r["estimated_calls"]}
        self.assertTrue(est, "no function was sampled")
        for name, e in est.items():
            # each thread times a function's first 256 calls (its probation)
            self.assertLessEqual(e, got[name][0] - 256, name)
        if not os.path.exists(CLI):
            return
        r = run([CLI, "report", "--server", self.base, "--project", "shop", "--key", self.view_key,
                 "--window", "1h", "--top", "500"], clean_env())
        self.assertEqual(r.returncode, 0, r)
        marked = {ln.split()[0] for ln in r.stdout.splitlines()[2:] if " ~" in ln}
        self.assertEqual(marked, set(est), r.stdout)
        self.assertIn("~ estimated: some calls were not clocked", r.stdout.splitlines()[-1])

    def test_report_command(self):
        """codensm report prints the project's top functions"""
        if not os.path.exists(CLI):
            self.skipTest("codensm not built")
        self.run_shop()
        r = run([CLI, "report", "--server", self.base, "--project", "shop", "--key", self.view_key,
                 "--window", "1h", "--top", "5"], clean_env())
        self.assertEqual(r.returncode, 0, r)
        lines = r.stdout.splitlines()
        self.assertIn("calls", lines[0])
        self.assertEqual(len(lines), 2 + 5, r.stdout)
        names = [ln.split()[0] for ln in lines[2:]]
        self.assertTrue(set(names) <= set(sample_expect_shop(N)) | {"legacy.export.export_xml"}, names)


if __name__ == "__main__":
    unittest.main()
