"""What the store keeps: time buckets summed over windows, merged
histograms, and commits that survive kill -9."""
import os
import signal
import tempfile
import shutil
import time
import unittest

from serverlib import Server, ServerTest, fn, at


def lower_ns(b):
    if b == 0:
        return 0
    if b == 1:
        return 2
    return 2 ** (b // 2) * (1 + (b % 2) / 2)


def percentile_ms(counts, q):
    """docs/payload.md's buckets, interpolated inside the bucket holding rank q*total."""
    total = sum(counts.values())
    rank, below = q * total, 0
    for b in sorted(counts):
        if below + counts[b] >= rank:
            lo, hi = lower_ns(b), lower_ns(b + 1)
            return (lo + (hi - lo) * (rank - below) / counts[b]) / 1e6
        below += counts[b]


class Buckets(ServerTest):
    @classmethod
    def prepare(cls):
        cls.p = cls.srv.project("store")
        cls.w = cls.srv.project("windows")

    def get(self, view, project="store", **params):
        key = (self.p if project == "store" else self.w)["dashboard"]
        status, body = self.srv.get(key, project, view, **params)
        self.assertEqual(status, 200, body)
        return body

    def row(self, name, window, project="store"):
        rows = self.get("functions", project, window=window, q=name)["rows"]
        return [r for r in rows if r["name"] == name][0]

    def test_windows_sum_their_buckets(self):
        """calls 2 h, 3 days and 10 days ago count in 24h/7d/30d windows, not in 1h"""
        key = self.w["ingest"]
        for ago, calls, errors in ((60, 5, 1), (2 * 3600, 7, 0), (3 * 86400, 11, 2), (10 * 86400, 13, 0)):
            self.assertEqual(self.srv.post(key, {"functions": [fn("win.f", calls, errors, 2 * calls)],
                                                 "_meta": at(ago)})[0], 200)
        expect = {"1h": (5, 1), "24h": (12, 1), "7d": (23, 3), "30d": (36, 3)}
        for window, (calls, errors) in expect.items():
            r = self.row("win.f", window, "windows")
            self.assertEqual((r["calls"], r["errors"], r["total_ms"]), (calls, errors, 2.0 * calls), window)
        # the trend holds the same calls, each in its step
        trend = self.get("summary", "windows", window="24h")["trend"]
        self.assertEqual(len(trend), 97)
        self.assertEqual([p["t"] % 900 for p in trend[:2]], [0, 0])
        self.assertEqual(sorted(p["calls"] for p in trend if p["calls"]), [5, 7])

    def test_a_clock_far_off_is_ignored(self):
        """an interval in the future or a year old is put at the server's now"""
        key = self.p["ingest"]
        self.srv.post(key, {"functions": [fn("clock.future", 3)], "_meta": at(-86400)})
        self.srv.post(key, {"functions": [fn("clock.past", 4)], "_meta": at(365 * 86400)})
        self.assertEqual(self.row("clock.future", "1h")["calls"], 3)
        self.assertEqual(self.row("clock.past", "1h")["calls"], 4)

    def test_histograms_merge_by_adding_counts(self):
        """two posts' histograms add up; p50/p95 are interpolated as computed by hand"""
        key = self.p["ingest"]
        self.srv.post(key, {"functions": [fn("hist.f", 20, hist=[[40, 10], [42, 10]])]})
        self.srv.post(key, {"functions": [fn("hist.f", 10, hist=[[42, 5], [44, 5]])], "_meta": at(120)})
        merged = {40: 10, 42: 15, 44: 5}
        self.assertEqual(self.srv.sql("SELECT h.b, SUM(h.count) FROM hist h JOIN functions f ON f.id = h.function"
                                      " WHERE f.name = 'hist.f' GROUP BY h.b ORDER BY h.b"),
                         sorted(merged.items()))
        r = self.row("hist.f", "1h")
        # by hand: rank 28.5 lies in bucket 44 [2^22, 1.5 * 2^22) ns at (28.5 - 25) / 5
        self.assertAlmostEqual(r["p95_ms"], (4194304 + 0.7 * 2097152) / 1e6, places=9)
        self.assertAlmostEqual(r["p95_ms"], percentile_ms(merged, 0.95), places=9)
        # rank 15 lies in bucket 42 [2^21, 1.5 * 2^21) at (15 - 10) / 15
        self.assertAlmostEqual(r["p50_ms"], (2097152 + 2097152 / 2 / 3) / 1e6, places=9)

    def test_a_histogram_without_calls_is_kept(self):
        """a delta with calls 0 and only a histogram count (a call binned late) adds to the histogram"""
        key = self.p["ingest"]
        self.srv.post(key, {"functions": [fn("late.f", 3, hist=[[40, 2]])]})
        self.srv.post(key, {"functions": [fn("late.f", 0, total_ms=0, hist=[[40, 1]])], "_meta": at(60)})
        self.assertEqual(self.srv.sql("SELECT SUM(h.count) FROM hist h JOIN functions f ON f.id = h.function"
                                      " WHERE f.name = 'late.f'"), [(3,)])
        self.assertEqual(self.row("late.f", "1h")["calls"], 3)

    def test_estimated_calls_sum_over_windows(self):
        """sampled timing's estimated_calls add up per window like calls; a body without them adds 0"""
        key = self.p["ingest"]
        for ago, calls, estimated in ((60, 100, 30), (120, 50, None), (2 * 3600, 40, 10)):
            extra = {} if estimated is None else {"estimated_calls": estimated}
            self.assertEqual(self.srv.post(key, {"functions": [fn("sampled.f", calls, **extra)],
                                                 "_meta": at(ago)})[0], 200)
        for window, (calls, estimated) in {"1h": (150, 30), "24h": (190, 40)}.items():
            r = self.row("sampled.f", window)
            self.assertEqual((r["calls"], r["estimated_calls"]), (calls, estimated), window)

    def test_no_histogram_gives_null_percentiles(self):
        """a seed client sends no histogram: p50/p95 are null, max is the mean"""
        self.srv.post(self.p["ingest"], {"functions": [fn("nohist.f", 4, total_ms=10)]})
        r = self.row("nohist.f", "1h")
        self.assertEqual((r["p50_ms"], r["p95_ms"], r["max_ms"], r["self_ms"]), (None, None, 2.5, 10.0))


class Durability(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="codensm-server-test-")
        self.srv = Server(self.tmp)
        self.key = self.srv.project("durable")["ingest"]
        self.srv.start()

    def tearDown(self):
        if self.srv.proc:
            self.srv.kill9()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_a_200_survives_kill_9(self):
        """the server is killed -9 right after answering 200: the rows are in the file"""
        for i in range(5):
            self.assertEqual(self.srv.post(self.key, {"functions": [fn(f"durable.f{i}", 100 + i, 1)],
                                                      "_meta": {"batch_id": f"d-{i}"}})[0], 200)
        self.srv.kill9()
        self.assertEqual(self.srv.sql("SELECT f.name, SUM(b.calls) FROM buckets b JOIN functions f"
                                      " ON f.id = b.function GROUP BY f.name ORDER BY f.name"),
                         [(f"durable.f{i}", 100 + i) for i in range(5)])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM batches"), [(5,)])
        # and a restarted server still knows the batches: the retry is a duplicate
        self.srv.start()
        self.assertEqual(self.srv.post(self.key, {"functions": [fn("durable.f0", 100, 1)],
                                                  "_meta": {"batch_id": "d-0"}}),
                         (200, {"ok": True, "functions": 1, "duplicate": True}))

    def test_sigterm_stops_cleanly(self):
        """SIGTERM ends the server with status 0"""
        self.assertEqual(self.srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
