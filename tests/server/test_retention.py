"""Retention: a server fed 40 days through its ingest endpoint, with a
test clock (CODENSM_TEST_CLOCK) moved a day at a time, keeps 32 days of
time series and 35 days of batch ids, and every view still answers the
exact sums of its window."""
import os
import shutil
import tempfile
import time
import unittest

from serverlib import OnTestClock, Server, fn, set_clock

DAY = 86400
BASE = 1_800_000_000 - 1_800_000_000 % DAY   # a midnight, UTC
DAYS = 40
NOON = 43200


def posted_at(d):
    """The server's clock when day d's batch is posted."""
    return BASE + d * DAY + NOON


def bucket(d):
    """The 60-second bucket day d's calls land in (the interval ends 30 s before the post)."""
    t = posted_at(d) - 30
    return t - t % 60


# The clock at the end: two hours after the last post, past the pruner's
# hourly period, so that a run at this time is due.
END = posted_at(DAYS - 1) + 7200
KEEP = 32 * DAY
REPLAY = 35 * DAY


def calls_a(d):
    return d + 1


def errors_a(d):
    return d % 3 == 0 and 1 or 0


def body(d):
    end = posted_at(d) - 30
    b = {"functions": [fn("ret.a", calls_a(d), errors_a(d), 2.0 * calls_a(d), department="front",
                          weight=2, hist=[[40, calls_a(d)]]),
                       fn("ret.b", 10, 0, 5.0, department="back")],
         "edges": [{"caller": "ret.a", "callee": "ret.b", "calls": calls_a(d)}],
         "_meta": {"interval": [end - 15, end], "batch_id": f"day-{d}"}}
    if d % 10 == 0:
        b["incidents"] = [{"kind": "error", "chain": [{"name": "ret.a"}, {"name": f"ret.fail{d}"}]}]
    return b


def kept_days(horizon):
    return [d for d in range(DAYS) if bucket(d) >= horizon]


class FortyDays(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="codensm-retention-test-")
        cls.clock = os.path.join(cls.tmp, "clock")
        cls.set_clock(posted_at(0) - 60)
        cls.srv = Server(cls.tmp, env={"CODENSM_TEST_CLOCK": cls.clock})
        cls.p = cls.srv.project("retained")
        cls.srv.start()
        for d in range(DAYS):
            cls.set_clock(posted_at(d))
            status, answer = cls.srv.post(cls.p["ingest"], body(d))
            assert status == 200, (d, status, answer)
        cls.set_clock(END)
        cls.counts = cls.wait_for_counts(cls.expected_counts(END))

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        with open(os.path.join(cls.tmp, "server.log"), errors="replace") as f:
            cls.log = f.read()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        assert rc == 0, f"codensm-server exited {rc}:\n{cls.log[-3000:]}"

    @classmethod
    def set_clock(cls, t):
        set_clock(cls.clock, t)

    @classmethod
    def table_counts(cls):
        tables = ("functions", "buckets", "hist", "names", "edges", "incidents", "batches", "usage")
        return {t: cls.srv.sql(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}

    @staticmethod
    def expected_counts(now):
        days = kept_days(now - KEEP)
        return {"functions": 2, "buckets": 2 * len(days), "hist": len(days), "names": 2,
                "edges": len(days),
                "incidents": len([d for d in range(0, DAYS, 10) if posted_at(d) - 30 >= now - KEEP]),
                "batches": len([d for d in range(DAYS) if posted_at(d) >= now - REPLAY]),
                "usage": len({time.gmtime(posted_at(d))[:2] for d in range(DAYS)})}

    @classmethod
    def wait_for_counts(cls, want, timeout=10):
        """The pruner runs within a second of the clock passing its period."""
        deadline = time.monotonic() + timeout
        while True:
            got = cls.table_counts()
            if got == want or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def get(self, view, **params):
        status, answer = self.srv.get(self.p["dashboard"], "retained", view, **params)
        self.assertEqual(status, 200, answer)
        return answer

    def test_the_tables_hold_32_days_and_35_days_of_batch_ids(self):
        """after 40 days: 32 days of buckets, histograms, edges and incidents, 35 days of batch ids"""
        self.assertEqual(self.counts, {"functions": 2, "buckets": 64, "hist": 32, "names": 2,
                                       "edges": 32, "incidents": 3, "batches": 35, "usage": 2})
        self.assertEqual(self.counts, self.expected_counts(END))
        self.assertEqual(self.srv.sql("SELECT MIN(bucket_start) FROM buckets"), [(bucket(8),)])
        self.assertIn("codensm-server: pruned ", open(os.path.join(self.tmp, "server.log")).read())

    def test_every_window_sums_what_it_should(self):
        """summary, functions, departments, graph, underuse, office, debt, prompt, incidents: exact sums of the window"""
        windows = {"1h": 3600, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY}
        for window, seconds in windows.items():
            days = [d for d in range(DAYS) if bucket(d) >= END - seconds]
            calls = sum(calls_a(d) + 10 for d in days)
            errors = sum(errors_a(d) for d in days)
            nsm = sum(2 * (calls_a(d) - errors_a(d)) + 10 for d in days)
            s = self.get("summary", window=window)
            self.assertEqual((s["calls"], s["errors"], s["nsm"]), (calls, errors, float(nsm)), window)
            self.assertEqual(sum(p["calls"] for p in s["trend"]), calls, window)
        days30 = [d for d in range(DAYS) if bucket(d) >= END - 30 * DAY]
        self.assertEqual(days30, list(range(10, 40)))
        a30 = sum(calls_a(d) for d in days30)
        row = [r for r in self.get("functions", window="30d")["rows"] if r["name"] == "ret.a"][0]
        self.assertEqual((row["calls"], row["total_ms"]), (a30, 2.0 * a30))
        depts = {d["department"]: d["calls"] for d in self.get("departments", window="30d")["departments"]}
        self.assertEqual(depts, {"front": a30, "back": 300})
        graph = self.get("graph", fn="ret.a", window="30d")
        self.assertEqual(graph["edges"], [{"caller": "ret.a", "callee": "ret.b", "calls": a30}])
        under = self.get("underuse", threshold=1000)["underused"]
        self.assertEqual(sorted((u["name"], u["calls_30d"]) for u in under),
                         [("ret.a", a30), ("ret.b", 300)])
        office = {f["name"]: f["calls"] for d in self.get("office", window="30d")["departments"]
                  for f in d["functions"]}
        self.assertEqual(office, {"ret.a": a30, "ret.b": 300})
        debt = {p["name"]: p["error_rate"] for p in self.get("debt", window="30d")["points"]}
        self.assertEqual(debt, {"ret.a": sum(errors_a(d) for d in days30) / a30, "ret.b": 0.0})
        prompt = self.get("prompt", fn="ret.a", window="30d")["prompt"]
        self.assertIn(f"- calls: {a30}, errors: {sum(errors_a(d) for d in days30)} ", prompt)
        self.assertIn(f"Callees (calls in the window):\n- ret.b ({a30})\n", prompt)
        incidents = self.get("incidents", window="30d")["incidents"]
        self.assertEqual(sorted(i["chain"][-1]["name"] for i in incidents),
                         ["ret.fail10", "ret.fail20", "ret.fail30"])

    def test_the_prometheus_counters_outlive_the_buckets(self):
        """the metrics endpoint's lifetime counters still hold all 40 days after pruning"""
        status, _, data = self.srv.request("GET", "/api/projects/retained/metrics", None,
                                           {"Authorization": f"Bearer {self.p['dashboard']}"})
        self.assertEqual(status, 200)
        lines = data.decode().splitlines()
        total_a = sum(calls_a(d) for d in range(DAYS))
        self.assertEqual(total_a, 820)
        self.assertIn(f'codensm_function_calls_total{{function="ret.a",department="front"}} {total_a}', lines)
        self.assertIn(f'codensm_function_errors_total{{function="ret.a",department="front"}} '
                      f'{sum(errors_a(d) for d in range(DAYS))}', lines)
        self.assertIn(f'codensm_department_calls_total{{department="back"}} {10 * DAYS}', lines)

    def test_a_batch_id_is_a_duplicate_until_its_horizon(self):
        """day 39's batch id is still known (a resend is a duplicate); day 2's was pruned and applies again"""
        recent = body(DAYS - 1)
        recent["_meta"] = {"batch_id": "day-39"}
        self.assertEqual(self.srv.post(self.p["ingest"], recent),
                         (200, {"ok": True, "functions": 2, "duplicate": True}))
        old = {"functions": [fn("ret.late", 1)], "_meta": {"batch_id": "day-2"}}
        self.assertEqual(self.srv.post(self.p["ingest"], old), (200, {"ok": True, "functions": 1}))
        con_rows = self.srv.sql("SELECT COUNT(*) FROM batches WHERE batch_id = 'day-2'")
        self.assertEqual(con_rows, [(1,)])
        # leave the tables as the other tests expect them
        self.srv.write(("DELETE FROM batches WHERE batch_id = 'day-2'", ()),
                       ("DELETE FROM buckets WHERE function ="
                        " (SELECT id FROM functions WHERE name = 'ret.late')", ()),
                       ("DELETE FROM functions WHERE name = 'ret.late'", ()))


class PruneAtStartup(OnTestClock, unittest.TestCase):
    PREFIX = "codensm-retention-test-"

    def test_a_server_started_after_a_pause_prunes_before_it_listens(self):
        """a server stopped for 20 days deletes what aged out before it answers its first request"""
        key = self.srv.project("paused")["ingest"]
        self.set_clock(posted_at(0))
        self.srv.start()
        for d in range(0, 10):
            self.set_clock(posted_at(d))
            self.assertEqual(self.srv.post(key, body(d))[0], 200)
        self.assertEqual(self.srv.stop(), 0)
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM buckets"), [(20,)])
        # 20 days later, the data of days 0..9 is 21 to 30 days old
        later = posted_at(9) + 20 * DAY
        horizon = later + 10 * DAY - KEEP    # then 10 more: days before this are gone
        self.set_clock(later + 10 * DAY)
        self.srv.start()
        kept = [d for d in range(10) if bucket(d) >= horizon]
        self.assertEqual(kept, [8, 9])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM buckets"), [(2 * len(kept),)])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM hist"), [(len(kept),)])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM edges"), [(len(kept),)])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM incidents"), [(0,)])
        # batch ids received within the last 35 days: days 4..9
        self.assertEqual(self.srv.sql("SELECT batch_id FROM batches ORDER BY received_at"),
                         [(f"day-{d}",) for d in range(4, 10)])

    def test_an_unreadable_test_clock_is_refused(self):
        """CODENSM_TEST_CLOCK naming a missing file: exit 1 with one line naming it"""
        import subprocess
        from serverlib import BIN
        p = subprocess.run([BIN, "--listen", "127.0.0.1:0", "--db", self.srv.db],
                           env={**os.environ, "CODENSM_TEST_CLOCK": self.clock}, capture_output=True,
                           text=True, timeout=10)
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        self.assertEqual(p.stderr, f"codensm-server: test clock '{self.clock}' (CODENSM_TEST_CLOCK):"
                                   " expected a file holding unix seconds\n")


if __name__ == "__main__":
    unittest.main()
