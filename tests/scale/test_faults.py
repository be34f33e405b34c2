"""Faults under load, with clients that resend an unanswered batch (same
batch id) through another server: a server killed -9 in the middle, and
(PostgreSQL) the database stopped and started again.  Whatever was
answered 200 is in the store, nothing counts twice, and no surviving
server crashed."""
import time
import unittest

from scalelib import Load, ScaleTest, create_project


class KillNine:
    def test_kill9_one_of_three(self):
        """three servers under 12 clients, one killed -9 a third of the way in: every batch lands once through the others"""
        project = create_project(self.db, "kill")
        servers = self.servers_up(3)
        seconds = 12
        self.load = Load(servers, project["ingest"], threads=12, seconds=seconds, tag="k").start()
        time.sleep(seconds / 3)
        victim = servers[1]
        t_kill = time.time()
        self.assertEqual(victim.kill9(), -9)
        self.assertTrue(self.load.join(), "the client threads finished")
        unanswered = [a for a in self.load.attempts if a[1] == 1 and a[4] is None]
        self.assertGreater(len(unanswered), 0, "requests to the killed server went unanswered")
        self.assertEqual({b for b, s in self.load.final.items() if s != 200}, set(),
                         "every batch was answered 200 in the end")
        after = [a for a in self.load.attempts if a[2] > t_kill + 0.5 and a[4] == 200]
        self.assertEqual({a[1] for a in after}, {0, 2}, "the other two answered after the kill")
        acked = self.load.acked()
        self.assertStoreEquals(project, acked, servers[0].port)
        self.assertStoreEquals(project, acked, servers[2].port)
        self.stop_all(killed=[victim])


class KillNineSQLite(KillNine, ScaleTest):
    backend = "sqlite"


class KillNinePostgreSQL(KillNine, ScaleTest):
    backend = "postgresql"

    def test_database_restart_under_load(self):
        """PostgreSQL stopped for 4 s and started again under load on two servers: 503s while down, no crash, exact sums after"""
        project = create_project(self.db, "dbdown")
        servers = self.servers_up(2)
        seconds = 14
        self.load = Load(servers, project["ingest"], threads=8, seconds=seconds, tag="d").start()
        time.sleep(seconds / 4)
        self.store.stop_db()
        down = time.time()
        time.sleep(4)
        up0 = time.time()
        self.store.restart_db()
        up = time.time()
        self.assertTrue(self.load.join(), "the client threads finished")
        # sent after the database was down and answered before it was
        # started again: every one a 503, none unanswered
        during = [a for a in self.load.attempts if a[2] > down + 0.2 and a[3] < up0]
        self.assertGreater(len(during), 8)
        self.assertEqual({a[4] for a in during}, {503}, "answers while the database was down")
        self.assertTrue(all(a[5] and "error" in a[5] for a in during))
        ok_after = [a[3] - up for a in self.load.attempts if a[2] > up and a[4] == 200]
        self.assertTrue(ok_after, "200s after the database came back")
        self.assertLess(min(ok_after), 10, "the first 200 after the restart, seconds")
        self.assertEqual({b for b, s in self.load.final.items() if s != 200}, set(),
                         "every batch was answered 200 in the end")
        acked = self.load.acked()
        for s in servers:
            self.assertStoreEquals(project, acked, s.port)
        # each server said once that the database was gone, and then that it was back
        for s in servers:
            lines = [l for l in s.log_text().splitlines() if "database" in l and (
                "unavailable, answering 503" in l or "available again" in l)]
            self.assertTrue(lines and "unavailable, answering 503" in lines[0]
                            and "available again" in lines[-1], f"server {s.index}: {lines}")
        self.stop_all()


if __name__ == "__main__":
    unittest.main()
