"""test_probes_server.py: probes end to end with the real codensm-server and
real programs built with the runtime (docs/probes.md, docs/api.md "Probes"
and "Root cause"): a probe made with `codensm probe add` reaches a running
program at its flush interval and its hits equal the calls the program
makes exactly; a probe on an excluded function; the automatic incident
probe catches the next failures exactly, and the root-cause analysis shows
the new build and the new caller the test makes."""
import json
import os
import re
import subprocess
import time

from harness import BUILD, PROGS, Case, clean_env, compile_prog

SERVER = os.path.join(BUILD, "bin", "codensm-server")
CLI = os.path.join(BUILD, "bin", "codensm")
FLUSH = 0.2            # the programs' CODENSM_FLUSH_INTERVAL, seconds


class ServerProbes(Case):
    def setUp(self):
        super().setUp()
        if not os.path.exists(SERVER) or not os.path.exists(CLI):
            self.skipTest("%s or %s not built" % (SERVER, CLI))
        db = os.path.join(self.tmp, "codensm.db")
        p = subprocess.run([SERVER, "project", "create", "shop", "--db", db],
                           capture_output=True, text=True, env=clean_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.keys = dict(re.findall(r"^(ingest|dashboard|manage) key: (\S+)$", p.stdout, re.M))
        self.srv_log = os.path.join(self.tmp, "server.log")
        with open(self.srv_log, "w") as log:
            self.srv = subprocess.Popen([SERVER, "--listen", "127.0.0.1:0", "--db", db],
                                        stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env())
        m = re.search(r"http://([\d.]+):(\d+)", self.srv.stdout.readline())
        self.assertTrue(m, "codensm-server's first line")
        self.base = "http://%s:%s" % m.groups()
        self.progs = []

    def tearDown(self):
        for p in self.progs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdin.close()
            p.stdout.close()
        if hasattr(self, "srv"):
            self.srv.terminate()
            rc = self.srv.wait(timeout=10)
            self.srv.stdout.close()
            with open(self.srv_log, errors="replace") as f:
                log = f.read()
            reports = [l for l in log.splitlines()
                       if "runtime error:" in l or "Sanitizer" in l or "SUMMARY: " in l]
            super().tearDown()
            self.assertEqual((rc, reports), (0, []), "codensm-server on SIGTERM; stderr:\n" + log[-3000:])
            return
        super().tearDown()

    # ---- helpers -----------------------------------------------------------------

    def cli(self, *args, key="manage"):
        """codensm probe ARGS with the manage key, or with the dashboard key alone."""
        env = clean_env(CODENSM_SERVER=self.base, CODENSM_PROJECT="shop",
                        CODENSM_MANAGE_KEY=self.keys[key] if key == "manage" else None,
                        CODENSM_DASHBOARD_KEY=self.keys["dashboard"])
        return subprocess.run([CLI, "probe", *args], capture_output=True, text=True, env=env, timeout=30)

    def api(self, path):
        import urllib.request
        req = urllib.request.Request(self.base + "/api/projects/shop/" + path,
                                     headers={"Authorization": "Bearer " + self.keys["dashboard"]})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def start(self, build=1, **env):
        prog = compile_prog("probesrv-%d" % build, ["probesrv.c"], flags=["-DBUILD=%d" % build])
        e = self.env(self.base + "/codensm/ingest", CODENSM_API_KEY=self.keys["ingest"],
                     CODENSM_INCLUDE="probesrv", CODENSM_EXCLUDE="probesrv.srv_helper",
                     CODENSM_FLUSH_INTERVAL=str(FLUSH), CODENSM_SERVICE="probesrv", **env)
        p = subprocess.Popen([prog], env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, cwd=PROGS, start_new_session=True)
        self.progs.append(p)
        return p

    def say(self, p, line):
        p.stdin.write(line + "\n")
        p.stdin.flush()
        self.assertEqual(p.stdout.readline(), "done\n", "the program's answer to %r" % line)

    def quit(self, p):
        p.stdin.write("quit\n")
        p.stdin.flush()
        self.assertEqual(p.wait(timeout=30), 0)

    def reported(self, probe_id, pid, timeout=10):
        """Waits until process pid has reported the probe: its row."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for pr in self.api("probes/" + probe_id)["processes"]:
                if pr["pid"] == pid:
                    return pr
            time.sleep(0.05)
        self.fail("process %d never reported probe %s within %s s; server log: %s"
                  % (pid, probe_id, timeout, open(self.srv_log).read()[-2000:]))

    def add(self, *args):
        r = self.cli("add", *args, "--json")
        self.assertEqual((r.returncode, r.stderr), (0, ""), r)
        return json.loads(r.stdout)

    # ---- tests ----------------------------------------------------------------------

    def test_a_probe_made_with_the_cli_reaches_the_running_program_and_counts_exactly(self):
        """codensm probe add: the running program reports it within two flush intervals; hits equal its 250 calls"""
        p = self.start()
        self.say(p, "leaf 1")                          # running, and srv_leaf known
        hist = self.add("probesrv.srv_leaf", "--type", "hist", "--id", "leaf-hist")
        made = time.monotonic()
        calls = self.add("probesrv.srv_leaf", "--type", "incr", "--event", "call", "--id", "leaf-calls")
        self.assertEqual((hist["state"], calls["instrument"]["event"]), ("active", "call"))
        first = self.reported("leaf-hist", p.pid)
        waited = time.monotonic() - made
        self.reported("leaf-calls", p.pid)
        print("# a new probe reached the program and came back reported in %.2f s (flush interval %.1f s)"
              % (waited, FLUSH))
        self.assertLess(waited, 3 * FLUSH + 1.0, "a spec travels in the next answer, its status in the next body")
        self.assertIn(first["status"], ("INSTALLED", "EMITTING"))
        self.say(p, "leaf 250")
        self.quit(p)
        for pid in ("leaf-hist", "leaf-calls"):
            got = json.loads(self.cli("show", pid, "--json", key="dashboard").stdout)
            self.assertEqual((got["hits"], [(x["pid"], x["status"], x["hits"]) for x in got["processes"]]),
                             (250, [(p.pid, "EMITTING", 250)]), pid)
        r = json.loads(self.cli("show", "leaf-hist", "--json").stdout)["results"]
        self.assertEqual((r["type"], r["count"]), ("hist", 250))
        self.assertEqual(json.loads(self.cli("show", "leaf-calls", "--json").stdout)["results"],
                         {"type": "incr", "count": 250})
        # the text forms name it too
        out = self.cli("ls", key="dashboard").stdout
        self.assertRegex(out, r"leaf-calls\s+active\s+incr\s+250\s+1\s")
        self.assertIn("results: 250 calls", self.cli("show", "leaf-hist").stdout)

    def test_the_cli_says_what_was_wrong_in_one_line(self):
        """each bad option and each refusal (400, 401, 403, 404, 409, no server): exit 1 or 2, one line naming it"""
        self.assertEqual(self.cli("add", "shop.f", "--type", "incr", "--id", "dup").returncode, 0)
        cases = [
            (("add", "shop.f"), "manage", 2, "codensm: probe add needs --type (log, hist, incr, stack or a registered type)"),
            (("add", "--type", "hist"), "manage", 2, "codensm: probe add needs one TARGET (a function name or prefix)"),
            (("add", "shop.f", "--type", "hist", "--lifespan", "0"), "manage", 2,
             "codensm: --lifespan '0' is not a number of minutes in (0, 10080]"),
            (("add", "shop.f", "--type", "incr", "--where", "slow"), "manage", 2,
             "codensm: --where: 'slow' is not KEY=VALUE"),
            (("add", "shop.f", "--type", "incr", "--where", "sample=0"), "manage", 2,
             "codensm: --where: sample '0' is not an integer >= 1"),
            (("add", "shop.f", "--type", "incr", "--where", "colour=red"), "manage", 2,
             "codensm: --where: unknown condition 'colour' (min_duration_ms, caller, errors_only, sample, max_hits)"),
            (("ls", "--where", "sample=2"), "manage", 2, "codensm: probe ls takes no --where (it is an option of probe add)"),
            (("frob",), "manage", 2, "codensm: unknown probe command 'frob' (add, ls, show, rm, renew)"),
            (("add", "shop.f", "--type", "hist", "--event", "call"), "manage", 1,
             "codensm: the server refused the request (400): instrument.event: a histogram needs event 'return' or 'end'"),
            (("add", "shop.f", "--type", "incr", "--id", "dup"), "manage", 1,
             "codensm: probe id 'dup' is in use in project 'shop' (409): remove it first or choose another --id"),
            (("rm", "dup"), "dashboard", 2,
             "codensm: probe rm needs the project's manage key (--key or CODENSM_MANAGE_KEY)"),
            (("rm", "dup", "--key", self.keys["dashboard"]), "dashboard", 1,
             "codensm: the key is the read-only dashboard key (403): creating, renewing and removing probes needs"
             " the manage key (cnsmm_..., --key or CODENSM_MANAGE_KEY)"),
            (("rm", "dup", "--key", "cnsmm_" + "a" * 32), "manage", 1,
             "codensm: the server does not know this key (401): give the project's manage key (--key, CODENSM_MANAGE_KEY)"),
            (("show", "nope"), "manage", 1, "codensm: no probe 'nope' in project 'shop' (404)"),
            (("renew", "nope"), "manage", 1, "codensm: no probe 'nope' in project 'shop' (404)"),
            (("ls", "--project", "elsewhere"), "manage", 1,
             "codensm: project 'elsewhere' not found on '%s' (404), or the key is another project's" % self.base),
            (("ls", "--server", "http://127.0.0.1:1"), "manage", 1,
             "codensm: cannot reach 'http://127.0.0.1:1': Couldn't connect to server"),
        ]
        for args, key, rc, line in cases:
            r = self.cli(*args, key=key)
            self.assertEqual((r.returncode, r.stderr, r.stdout), (rc, line + "\n", ""), args)
        self.assertEqual(self.cli("rm", "dup").stdout, "probe dup removed\n")

    def test_a_probe_on_an_excluded_function(self):
        """srv_helper is excluded (not counted as a function), yet its probe counts its 120 calls exactly"""
        p = self.start()
        self.add("probesrv.srv_helper", "--type", "incr", "--id", "helper")
        # not called yet: the process says so, with the probe armed
        self.assertEqual(self.reported("helper", p.pid)["message"],
                         "target 'probesrv.srv_helper' matches no function the process has called")
        self.say(p, "helper 120")
        self.quit(p)
        got = self.api("probes/helper")
        self.assertEqual((got["hits"], got["results"]), (120, {"type": "incr", "count": 120}))
        names = [r["name"] for r in self.api("functions?window=1h&limit=500")["rows"]]
        self.assertNotIn("probesrv.srv_helper", names)

    def test_the_automatic_incident_probe_and_the_root_cause(self):
        """a new incident arms auto-N; the next 7 + 4 failures are caught exactly; RCA shows the new build and caller"""
        old = self.start(build=1, CODENSM_MODE="full")       # the build that ran before
        self.say(old, "leaf 5")
        self.say(old, "flush")
        self.quit(old)
        p = self.start(build=2, CODENSM_MODE="full")
        self.say(p, "fail 3")
        self.say(p, "flush")
        inc = self.api("incidents?window=1h")["incidents"]
        self.assertEqual([(i["chain"][-1]["name"], i["count"]) for i in inc], [("probesrv.srv_charge", 3)])
        n = inc[0]["id"]
        auto = self.api("probes/auto-%d" % n)
        self.assertEqual((auto["auto"], auto["incident_id"], auto["target"], auto["instrument"]["type"]),
                         (True, n, "probesrv.srv_charge", "stack"))
        self.reported("auto-%d" % n, p.pid)
        self.reported("auto-%d-log" % n, p.pid)
        self.say(p, "fail 7")
        self.say(p, "newfail 4")
        self.quit(p)
        rca = self.api("incidents/%d/rca" % n)
        l1, l2, l3 = rca["levels"]
        self.assertEqual([f["name"] for f in l1["chain"]][-2:], ["probesrv.srv_api", "probesrv.srv_charge"])
        self.assertEqual((l2["probe_id"], l2["status"], l2["occurrences"], l2["threads"]),
                         ("auto-%d" % n, "EMITTING", 11, 1))
        self.assertEqual(l2["callers"], [{"name": "probesrv.srv_api", "count": 7},
                                         {"name": "probesrv.srv_cron", "count": 4}])
        self.assertEqual(sum(c["count"] for c in l2["chains"]), 11)
        self.assertEqual(len(l2["log"]), 11)
        self.assertTrue(all(r["error"] and r["event"] == "end" for r in l2["log"]), l2["log"])
        self.assertIsNotNone(l2["durations"]["p50_ms"])
        self.assertEqual(l3["new_build"]["service"], "probesrv")
        self.assertRegex(l3["new_build"]["build_id"], r"^[0-9a-f]{16,}$")
        self.assertEqual([(c["name"], c["calls"]) for c in l3["new_callers"]], [("probesrv.srv_cron", 4)])
        # the second chain (srv_cron) is an incident of its own, with no second pair
        ids = [x["id"] for x in self.api("probes")["probes"]]
        self.assertEqual(sorted(i for i in ids if i.startswith("auto-")), ["auto-%d" % n, "auto-%d-log" % n])
