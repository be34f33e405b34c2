"""Monthly quotas per plan: 100-120% accepted and flagged, above 429."""
import calendar
import time
import unittest

from serverlib import ServerTest, fn


class Quota(ServerTest):
    @classmethod
    def prepare(cls):
        cls.free = cls.srv.project("freeplan", "free")
        cls.team = cls.srv.project("teamplan", "team")

    def usage(self, project):
        month_start = calendar.timegm(time.gmtime()[:2] + (1, 0, 0, 0))
        return self.srv.sql("SELECT u.calls, u.overage FROM usage u JOIN projects p ON p.id = u.project"
                            " WHERE p.name = ? AND u.month_start = ?", project, month_start)

    def test_free_plan_quota_steps(self):
        """free: 100,000 calls fine, up to 120,000 flagged overage, one more is 429"""
        key = self.free["ingest"]
        self.assertEqual(self.srv.post(key, {"functions": [fn("q.a", 60000), fn("q.b", 40000)]}),
                         (200, {"ok": True, "functions": 2}))
        self.assertEqual(self.usage("freeplan"), [(100000, 0)])
        self.assertEqual(self.srv.post(key, {"functions": [fn("q.a", 20000)]}),
                         (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.usage("freeplan"), [(120000, 1)])
        self.assertEqual(self.srv.post(key, {"functions": [fn("q.a", 1)]}),
                         (429, {"error": "quota_exceeded"}))
        # the refused batch changed nothing, and a batch without calls still passes
        self.assertEqual(self.usage("freeplan"), [(120000, 1)])
        self.assertEqual(self.srv.sql("SELECT calls_total FROM functions WHERE name = 'q.a'"), [(80000,)])
        self.assertEqual(self.srv.post(key, {"functions": [fn("q.a", 0)]}),
                         (200, {"ok": True, "functions": 1}))

    def test_team_plan_is_larger(self):
        """team: 5,000,000 calls a month; 6,000,000 accepted as overage, 6,000,001 refused"""
        key = self.team["ingest"]
        self.assertEqual(self.srv.post(key, {"functions": [fn("t.a", 5000001)]})[0], 200)
        self.assertEqual(self.usage("teamplan"), [(5000001, 1)])
        self.assertEqual(self.srv.post(key, {"functions": [fn("t.a", 1000000)]}),
                         (429, {"error": "quota_exceeded"}))
        self.assertEqual(self.srv.post(key, {"functions": [fn("t.a", 999999)]})[0], 200)
        self.assertEqual(self.usage("teamplan"), [(6000000, 1)])


if __name__ == "__main__":
    unittest.main()
