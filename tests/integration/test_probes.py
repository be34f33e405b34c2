"""test_probes.py: probes from a CODENSM_PROBES file (docs/probes.md), in
real programs against the harness's receiver: hits equal the calls the
program made, per event; excluded, dlopen'ed, forked and threaded targets;
expiry; a bad spec beside good ones; a user instrument; a file changed
while the program runs; codensm_error() in an excluded probed function; a
fatal signal ending the probed calls (spooled, or on stderr); a call in
progress across a change of the specs; results of a failed send."""
import datetime
import json
import os
import subprocess
import time

from harness import PROGS, SANITIZER, Case, Totals, compile_prog, run


def iso(offset_s=0.0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spec(target, type_, event=None, value=None, custom=None, lifespan=10, lastmodified=None):
    ins = {"type": type_, "name": target + "." + type_}
    if event:
        ins["event"] = event
    if value:
        ins["value"] = value
    if custom is not None:
        ins["custom"] = custom
    return {"target": target, "instrument": ins, "lifespan": lifespan,
            "lastmodified": lastmodified or iso(-1)}


def probes_of(bodies):
    """{id: [entry, ...]} in the order the bodies came."""
    out = {}
    for b in bodies:
        for e in b.get("probes", []):
            out.setdefault(e["id"], []).append(e)
    return out


def hits(entries):
    return sum(e["hits"] for e in entries)


class ProbeCase(Case):
    def prog(self):
        return compile_prog("probed", ["probed.c"])

    def run_probed(self, specs, args, rec=None, **env):
        path = os.path.join(self.tmp, "probes.json")
        with open(path, "w") as f:
            json.dump(specs, f)
        rec = rec or self.receiver()
        base = dict(CODENSM_INCLUDE="probed", CODENSM_EXCLUDE="probed.probe_helper",
                    CODENSM_PROBES=path, CODENSM_FLUSH_INTERVAL="0.2")
        base.update(env)
        r = run([self.prog()] + [str(a) for a in args], self.env(rec, **base))
        self.assert_ran(r)
        return rec, probes_of(rec.committed()), r

    def respec_while_running(self, first, then, args, after):
        """Run the program (args) with the probes file holding `first`;
        after `after` s replace it, in one rename, with `then`.  Returns the
        receiver, the program's stderr and when the file was replaced."""
        path = os.path.join(self.tmp, "probes.json")
        with open(path, "w") as f:
            json.dump(first, f)
        rec = self.receiver()
        env = self.env(rec, CODENSM_INCLUDE="probed", CODENSM_PROBES=path,
                       CODENSM_FLUSH_INTERVAL="0.2")
        proc = subprocess.Popen([self.prog()] + [str(a) for a in args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(after)
        with open(path + ".new", "w") as f:
            json.dump(then, f)
        os.rename(path + ".new", path)
        written = time.time()
        _, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        return rec, err, written


class TestProbeEvents(ProbeCase):
    def test_hits_equal_the_calls_per_event(self):
        """call, return and end probes count exactly the calls made; errors and longjmps are ends, not returns"""
        n = 300
        specs = {
            "leaf-call": spec("probed.probe_leaf", "incr", "call"),
            "leaf-ret": spec("probed.probe_leaf", "incr", "return"),
            "leaf-end": spec("probed.probe_leaf", "incr", "end"),
            "fail-ret": spec("probed.probe_fail", "incr", "return", "error"),
            "fail-err": spec("probed.probe_fail", "incr", "end", custom={"errors_only": True}),
            "jump-call": spec("probed.probe_jump", "incr", "call"),
            "jump-ret": spec("probed.probe_jump", "incr", "return"),
            "jump-end": spec("probed.probe_jump", "incr", "end"),
        }
        rec, p, r = self.run_probed(specs, ["calls", n])
        got = {k: hits(v) for k, v in p.items()}
        # A longjmp's end is known when the runtime repairs the stack:
        # at main's exit for every probe_jump.
        self.assertEqual(got, {"leaf-call": n, "leaf-ret": n, "leaf-end": n, "fail-ret": n,
                               "fail-err": n // 2, "jump-call": n, "jump-ret": 0,
                               "jump-end": n}, r)
        last = p["fail-ret"][-1]
        self.assertEqual(last["by"], {"error": n // 2, "ok": n - n // 2})
        self.assertEqual(last["status"], "EMITTING")
        self.assertEqual(p["jump-ret"][-1]["status"], "INSTALLED")

    def test_an_excluded_function_left_by_longjmp(self):
        """an excluded probed call left by longjmp ends once its tracked caller has returned"""
        n = 200
        rec, p, r = self.run_probed({"c": spec("probed.probe_xjump", "incr", "call"),
                                     "r": spec("probed.probe_xjump", "incr", "return"),
                                     "e": spec("probed.probe_xjump", "incr", "end", "error")},
                                    ["xjump", n], CODENSM_EXCLUDE="probed.probe_xjump")
        # Each end is seen at the next probed call, when the runtime finds
        # the call's tracked caller gone: the last one has no next call.
        self.assertEqual({k: hits(v) for k, v in p.items()}, {"c": n, "r": 0, "e": n - 1}, r)
        self.assertEqual(p["e"][-1]["by"], {"error": n - 1})

    def test_hist_log_and_stack(self):
        """hist counts every return; log records each up to its rate limit; stack names the chain"""
        n = 250
        specs = {"h": spec("probed.probe_leaf", "hist"),
                 "l": spec("probed.probe_leaf", "log"),
                 "s": spec("probed.probe_leaf", "stack")}
        rec, p, r = self.run_probed(specs, ["calls", n])
        self.assertEqual(hits(p["h"]), n)
        self.assertEqual(p["h"][-1]["count"], n)
        self.assertEqual(sum(c for b, c in p["h"][-1]["hist"]), n)
        self.assertTrue(all(0 <= b < 80 for b, c in p["h"][-1]["hist"]))
        logs = [x for e in p["l"] for x in e["log"]]
        dropped = sum(e["log_dropped"] for e in p["l"])
        self.assertEqual(len(logs) + dropped, n, r)
        self.assertTrue(all(x["caller"] == "probed.probe_outer" and x["event"] == "return"
                            for x in logs), logs[:3])
        stacks = p["s"][-1]["stacks"]
        self.assertEqual(stacks, [{"chain": ["probed.main", "probed.probe_outer", "probed.probe_leaf"],
                                   "count": n}])

    def test_excluded_function(self):
        """a probe on an excluded function sees every call; the function is still not tracked"""
        n = 400
        rec, p, r = self.run_probed({"x": spec("probed.probe_helper", "incr", "return", "caller")},
                                    ["calls", n])
        self.assertEqual(hits(p["x"]), n)
        self.assertEqual(p["x"][-1]["by"], {"probed.probe_outer": n})
        names = {f["name"] for b in rec.committed() for f in b.get("functions", [])}
        self.assertNotIn("probed.probe_helper", names)
        self.assertIn("probed.probe_leaf", names)


class TestProbeExceptions(ProbeCase):
    def test_an_exception_is_an_end_not_a_return(self):
        """a C++ exception leaving a probed function is an end with an error, never a return"""
        self.check_exceptions(None)

    def test_an_exception_leaving_an_excluded_function(self):
        """the same when the throwing function is excluded"""
        self.check_exceptions("probed_cpp.thrower")

    def check_exceptions(self, exclude):
        prog = compile_prog("probed_cpp", ["probed_cpp.cpp"])
        path = os.path.join(self.tmp, "probes.json")
        n, thrown = 300, 100
        with open(path, "w") as f:
            json.dump({"t-ret": spec("probed_cpp.thrower", "incr", "return"),
                       "t-end": spec("probed_cpp.thrower", "incr", "end", "error"),
                       "m-ret": spec("probed_cpp.middle", "incr", "return"),
                       "m-err": spec("probed_cpp.middle", "incr", "end",
                                     custom={"errors_only": True})}, f)
        rec = self.receiver()
        r = run([prog, str(n)], self.env(rec, CODENSM_INCLUDE="probed_cpp", CODENSM_PROBES=path,
                                         CODENSM_FLUSH_INTERVAL="0.2", CODENSM_EXCLUDE=exclude))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "caught %d\n" % thrown)
        p = probes_of(rec.committed())
        self.assertEqual({k: hits(v) for k, v in p.items()},
                         {"t-ret": n - thrown, "t-end": n, "m-ret": n - thrown, "m-err": thrown}, r)
        self.assertEqual(p["t-end"][-1]["by"], {"error": thrown, "ok": n - thrown})


class TestProbeTargets(ProbeCase):
    def test_dlopened_library(self):
        """a probe on a function of a library dlopen'ed later sees each of its calls"""
        lib = compile_prog("libalpha.so", ["alpha/entry.c"], cwd=os.path.join(PROGS, "plugins"),
                           shared=True)
        rec, p, r = self.run_probed({"a": spec("alpha.entry.alpha_step", "incr")},
                                    ["dlopen", 500, lib], CODENSM_INCLUDE="probed,alpha")
        self.assertEqual(hits(p["a"]), 500, p.get("a"))

    def test_forked_child(self):
        """parent and child each report their own hits: together exactly the calls"""
        rec, p, r = self.run_probed({"f": spec("probed.probe_leaf", "incr", "return")},
                                    ["fork", 300])
        self.assertEqual(hits(p["f"]), 600)
        pids = {b["_meta"]["pid"] for b in rec.committed() if b.get("probes")}
        self.assertEqual(len(pids), 2)

    def test_many_threads(self):
        """32 threads of 2,000 calls each: hits and the histogram are exact"""
        rec, p, r = self.run_probed({"t": spec("probed.probe_leaf", "hist"),
                                     "u": spec("probed.probe_leaf", "incr", "call", "thread")},
                                    ["threads", 32, 2000])
        self.assertEqual(hits(p["t"]), 64000)
        self.assertEqual(p["t"][-1]["count"], 64000)
        self.assertEqual(hits(p["u"]), 64000)
        self.assertEqual(sorted(p["u"][-1]["by"].values()), [2000] * 32)


class TestProbeLifecycle(ProbeCase):
    def test_expired_spec_stays_silent(self):
        """a spec whose lifespan ended reports EXPIRED and no hits"""
        rec, p, r = self.run_probed({"old": spec("probed.probe_leaf", "incr", lifespan=1,
                                                 lastmodified=iso(-120)),
                                     "new": spec("probed.probe_leaf", "incr")}, ["calls", 100])
        self.assertEqual(hits(p["old"]), 0)
        self.assertEqual({e["status"] for e in p["old"]}, {"EXPIRED"})
        self.assertEqual(hits(p["new"]), 100)

    def test_a_spec_of_the_future_waits_then_emits(self):
        """a spec whose lastmodified is ahead is RECEIVED with no hits, then emits from the flush after that time"""
        start = time.time()
        rec, p, r = self.run_probed({"later": spec("probed.probe_leaf", "log",
                                                   lastmodified=iso(1.0))}, ["loop", 2500])
        statuses = [e["status"] for e in p["later"]]
        self.assertEqual(statuses[0], "RECEIVED", statuses)
        self.assertEqual(statuses[-1], "EMITTING", statuses)
        self.assertEqual(sum(e["hits"] for e in p["later"] if e["status"] == "RECEIVED"), 0)
        t0 = min(x["t"] for e in p["later"] for x in e["log"])
        self.assertGreaterEqual(t0, start + 1.0 - 0.05)
        self.assertLess(t0 - (start + 1.0), 0.2 + 0.3, "armed within a flush interval (+ slack)")

    def test_bad_specs_are_errors_beside_good_ones(self):
        """malformed, unknown type and matching nothing are ERROR with a reason; the good one emits"""
        bad_type = spec("probed.probe_leaf", "gauge")
        no_target = spec("probed.probe_leaf", "incr")
        del no_target["target"]
        rec, p, r = self.run_probed({"good": spec("probed.probe_leaf", "incr"),
                                     "type": bad_type, "malformed": no_target,
                                     "nothing": spec("no.such.function", "incr"),
                                     "notobj": 42}, ["calls", 50])
        self.assertEqual(hits(p["good"]), 50)
        last = {k: v[-1] for k, v in p.items()}
        for k in ("type", "malformed", "nothing", "notobj"):
            self.assertEqual(last[k]["status"], "ERROR", last[k])
            self.assertEqual(hits(p[k]), 0)
        self.assertIn("unknown instrument type 'gauge'", last["type"]["message"])
        self.assertIn("'target' is missing", last["malformed"]["message"])
        self.assertIn("matches no function", last["nothing"]["message"])
        self.assertIn("not a JSON object", last["notobj"]["message"])

    def test_a_file_that_is_not_json_changes_nothing(self):
        """a probes file that does not parse is named on stderr once; the program runs as without it"""
        path = os.path.join(self.tmp, "probes.json")
        with open(path, "w") as f:
            f.write('{"p": {"target": ')
        rec = self.receiver()
        r = run([self.prog(), "calls", "50"],
                self.env(rec, CODENSM_INCLUDE="probed", CODENSM_PROBES=path))
        self.assert_ran(r)
        self.assertEqual(r.stderr.count("cannot read probes from '%s'" % path), 1, r)
        self.assertFalse(any(b.get("probes") for b in rec.committed()))
        calls = sum(f["calls"] for b in rec.committed() for f in b["functions"]
                    if f["name"] == "probed.probe_leaf")
        self.assertEqual(calls, 50)

    def test_user_instrument(self):
        """a type registered with codensm_instrument_register gets every event"""
        rec, p, r = self.run_probed({"u": spec("probed.probe_leaf", "tally", "return")},
                                    ["user", 700])
        self.assertEqual(r.stdout, "tally 700 700\n")
        self.assertEqual(hits(p["u"]), 700)
        self.assertEqual(p["u"][-1]["status"], "EMITTING")

    def test_file_changed_while_running_is_picked_up(self):
        """a probe written into the file while the program runs emits within a flush interval"""
        rec, err, written = self.respec_while_running(
            {}, {"late": spec("probed.probe_leaf", "log")}, ["loop", 2500], 0.8)
        logs = [x for e in probes_of(rec.committed()).get("late", []) for x in e["log"]]
        self.assertTrue(logs, err)
        first = min(x["t"] for x in logs)
        self.assertLess(first - written, 0.2 + 0.3, "picked up within a flush interval (+ slack)")


class TestProbesWithoutKey(ProbeCase):
    def test_reports_go_to_stderr_without_a_key(self):
        """without CODENSM_API_KEY, probes report on stderr at each interval and at exit"""
        path = os.path.join(self.tmp, "probes.json")
        with open(path, "w") as f:
            json.dump({"k": spec("probed.probe_leaf", "incr", "return")}, f)
        env = self.env(None, CODENSM_INCLUDE="probed", CODENSM_PROBES=path,
                       CODENSM_FLUSH_INTERVAL="0.1", CODENSM_API_KEY=None)
        r = run([self.prog(), "loop", "400"], env)
        self.assert_ran(r)
        lines = [json.loads(line[len("codensm: probes "):]) for line in r.stderr.splitlines()
                 if line.startswith("codensm: probes ")]
        self.assertGreater(len(lines), 1, r)
        self.assertEqual({x["pid"] for x in lines}, {r.pid})
        self.assertEqual(sum(e["hits"] for x in lines for e in x["probes"]), 400, r)
        self.assertEqual(lines[-1]["probes"][0]["count"], 400)


class TestProbesFromTheAnswer(ProbeCase):
    def test_specs_in_the_ingest_answer_are_applied(self):
        """a probe in the receiver's answer is applied within a flush interval and reported in the next bodies"""
        rec = self.receiver()
        rec.answer_extra = {"probes": {"srv": spec("probed.probe_leaf", "log")}}
        env = self.env(rec, CODENSM_INCLUDE="probed", CODENSM_FLUSH_INTERVAL="0.2")
        r = run([self.prog(), "loop", "1500"], env)
        self.assert_ran(r)
        bodies = rec.committed()
        p = probes_of(bodies)
        self.assertIn("srv", p, r)
        self.assertEqual(p["srv"][-1]["status"], "EMITTING")
        first = next(i for i, b in enumerate(bodies) if b.get("probes"))
        self.assertLessEqual(first, 2, "reported from the first bodies after the answer")
        # Applied on the answer: the first record is at most a flush
        # interval (+ slack for a busy machine) after the first answer.
        answered = min(q["time"] for q in rec.all_requests() if q["committed"])
        t0 = min(x["t"] for e in p["srv"] for x in e["log"])
        self.assertLess(t0 - answered, 0.2 + 0.3)
        # Every call after the answer is a hit: at most the calls made.
        self.assertGreater(hits(p["srv"]), 500)
        self.assertLessEqual(hits(p["srv"]), 1500)

    def test_a_server_without_probes_gets_no_empty_bodies(self):
        """a seed-contract server (no probes in its answer) is never sent a body with nothing in it"""
        rec = self.receiver()
        env = self.env(rec, CODENSM_INCLUDE="probed", CODENSM_FLUSH_INTERVAL="0.1")
        r = run([self.prog(), "loop", "600"], env)
        self.assert_ran(r)
        self.assertTrue(all(b["functions"] or b.get("inventory") for b in rec.committed()))
        self.assertFalse(any("probes" in b for b in rec.committed()))

    def test_once_a_server_gave_probes_an_idle_program_still_asks(self):
        """after an answer with probes, a flush with nothing else to send still posts"""
        rec = self.receiver()
        rec.answer_extra = {"probes": {}}
        env = self.env(rec, CODENSM_INCLUDE="probed", CODENSM_FLUSH_INTERVAL="0.1")
        r = run([self.prog(), "idle", "1000"], env)
        self.assert_ran(r)
        empty = [q for q in rec.all_requests() if q["committed"]
                 and not q["json"]["functions"] and q["json"].get("probes") == []]
        self.assertGreaterEqual(len(empty), 3, "about one post per 0.1 s interval while idle")
        # At its flush interval: the typical gap between two such posts is
        # one interval (a median, robust to a busy machine's hiccups).
        gaps = sorted(b["time"] - a["time"] for a, b in zip(empty, empty[1:]))
        self.assertLess(gaps[len(gaps) // 2], 0.1 * 2, gaps)


class TestProbeErrorInExcluded(ProbeCase):
    def test_codensm_error_in_an_excluded_probed_function(self):
        """codensm_error() inside an excluded probed function marks its end and return; its tracked caller is marked as before"""
        n = 200
        rec, p, r = self.run_probed({"r": spec("probed.probe_xfail", "incr", "return", "error"),
                                     "e": spec("probed.probe_xfail", "incr", "end",
                                               custom={"errors_only": True}),
                                     "c": spec("probed.probe_xfail", "incr", "call")},
                                    ["xerror", n],
                                    CODENSM_EXCLUDE="probed.probe_helper,probed.probe_xfail")
        self.assertEqual({k: hits(v) for k, v in p.items()}, {"r": n, "e": n // 2, "c": n}, r)
        self.assertEqual(p["r"][-1]["by"], {"error": n // 2, "ok": n - n // 2})
        t = Totals(rec.committed())
        self.assertEqual(t.counts("probed.probe_x"), {"probed.probe_xcaller": (1, 1)})


class TestProbesAtACrash(ProbeCase):
    SPECS = {"leaf": spec("probed.probe_leaf", "incr", "return"),
             "c-end": spec("probed.probe_crashing", "log", "end"),
             "c-ret": spec("probed.probe_crashing", "incr", "return"),
             "x-end": spec("probed.probe_xboom", "incr", "end", "error")}
    N = 300

    def setUp(self):
        super().setUp()
        if SANITIZER:
            self.skipTest("the sanitizer owns the fatal signals")

    def crash(self, how, rec, **env):
        path = os.path.join(self.tmp, "probes.json")
        specs = dict(self.SPECS)
        for v in specs.values():
            v["lastmodified"] = iso(-1)
        with open(path, "w") as f:
            json.dump(specs, f)
        r = run([self.prog(), "crash", str(self.N), how],
                self.env(rec, CODENSM_INCLUDE="probed", CODENSM_PROBES=path,
                         CODENSM_FLUSH_INTERVAL="0.2",
                         CODENSM_EXCLUDE="probed.probe_helper,probed.probe_xboom", **env))
        self.assertEqual(r.returncode, {"segv": -11, "abort": -6}[how], r)
        self.assertEqual(r.stdout, "crashing\n")
        return r

    def check(self, p, r):
        self.assertEqual({k: hits(v) for k, v in p.items()},
                         {"leaf": self.N, "c-end": 1, "c-ret": 0, "x-end": 1}, r)
        logs = [x for e in p["c-end"] for x in e["log"]]
        self.assertEqual([(x["event"], x["error"], x["caller"]) for x in logs],
                         [("end", True, "probed.main")])
        self.assertEqual(p["x-end"][-1]["by"], {"error": 1})

    def test_a_fatal_signal_ends_the_probed_calls_in_the_spool(self):
        """SIGSEGV and SIGABRT end the crashing thread's probed calls (error set); the spool carries them, and the next run delivers them"""
        for how in ("segv", "abort"):
            with self.subTest(how=how):
                rec = self.receiver()
                r = self.crash(how, rec)
                self.assertGreaterEqual(len(self.spooled()), 1, r)
                r2 = run([self.prog(), "idle", "0"], self.env(rec, CODENSM_INCLUDE="probed"))
                self.assert_ran(r2)
                self.assertEqual(self.spooled(), [], "the second run drained the spool")
                bodies = [b for b in rec.committed() if b["_meta"]["pid"] == r.pid]
                self.check(probes_of(bodies), r)

    def test_without_a_key_the_crash_writes_the_last_stderr_line(self):
        """without a key, a fatal signal writes the probes' last line on stderr, the crashing calls ended"""
        r = self.crash("segv", None, CODENSM_API_KEY=None)
        lines = [json.loads(line[len("codensm: probes "):]) for line in r.stderr.splitlines()
                 if line.startswith("codensm: probes ")]
        self.assertTrue(lines, r)
        p = {}
        for x in lines:
            for e in x["probes"]:
                p.setdefault(e["id"], []).append(e)
        self.check(p, r)


class TestProbesAcrossChanges(ProbeCase):
    def test_a_call_in_progress_ends_for_the_probes_the_change_kept(self):
        """a probed call running while the file changes ends for the probe kept; a removed one drops it"""
        keep = spec("probed.probe_long", "incr", "end")
        rec, err, _ = self.respec_while_running(
            {"keep": keep, "drop": spec("probed.probe_long", "incr", "end")},
            {"keep": keep, "other": spec("probed.probe_leaf", "incr")}, ["long", 1500], 0.6)
        p = probes_of(rec.committed())
        self.assertEqual(hits(p["keep"]), 1, err)
        self.assertEqual(hits(p["drop"]), 0, err)
        self.assertEqual(p["keep"][-1]["status"], "EMITTING")
        self.assertIn("other", p, "the change was applied while the call ran")

    def test_results_of_a_failed_send_ride_the_next_body(self):
        """bodies answered 503 are merged back: the probes' hits and log records still add up exactly"""
        rec = self.receiver(plan=[200, 503, 503, 200, 503])
        n = 1500
        rec2, p, r = self.run_probed({"l": spec("probed.probe_leaf", "log"),
                                      "i": spec("probed.probe_leaf", "incr", "return")},
                                     ["loop", n], rec=rec)
        self.assertEqual(sum(1 for q in rec.all_requests() if q["action"] == 503), 3)
        self.assertEqual(hits(p["i"]), n, r)
        self.assertEqual(hits(p["l"]), n, r)
        records = [x for e in p["l"] for x in e["log"]]
        dropped = sum(e["log_dropped"] for e in p["l"])
        self.assertEqual(len(records) + dropped, n)
        times = [x["t"] for x in records]
        self.assertEqual(times, sorted(times), "records in the order of the calls")
