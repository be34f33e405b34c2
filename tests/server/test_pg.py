"""PostgreSQL: what only the shared database has: a password never on the
command line, migrations applied once by servers starting together, a
schema newer than the server refused, daily partitions created ahead and
dropped by retention, 503s while the database is down and recovery once
it is back, and two servers answering for one project exactly."""
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from serverlib import (BIN, PG, OnTestClock, Server, TwoServersOnOneDb, cli, db_schema,
                       fn, at, new_db, pg_only, psql)

DAY = 86400
CLUSTER = os.environ.get("CODENSM_TEST_PG_DIR")
HERE = os.path.dirname(os.path.abspath(__file__))
PGCLUSTER = os.path.join(HERE, "..", "pgcluster.sh")


def partitions(db, table):
    return [r[0] for r in psql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                               " JOIN pg_class p ON p.oid = i.inhparent"
                               f" WHERE p.relname = '{table}'"
                               " AND p.relnamespace = current_schema()::regnamespace ORDER BY 1",
                               schema=db_schema(db))]


def day_name(table, t):
    return table + "_p" + time.strftime("%Y%m%d", time.gmtime(t))


@pg_only
class Connection(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="codensm-pg-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_a_password_in_the_url_is_refused(self):
        """a URL or key=value string carrying a password: exit 1, one line, the password never echoed"""
        url = PG.replace("codensm@", "codensm:s3cret@")
        for db in (url, PG.replace("postgresql://", "postgres://").replace("codensm@", "codensm:s3cret@"),
                   "host=127.0.0.1 dbname=codensm password=s3cret"):
            for args in (["--listen", "127.0.0.1:0"], ["project", "create", "p"]):
                p = subprocess.run([BIN, *args, "--db", db], capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 1, (db, args))
                self.assertEqual(p.stdout, "")
                self.assertEqual(p.stderr, "codensm-server: the database connection string carries a"
                                 " password: refused; give it through PGPASSWORD, ~/.pgpass or a service"
                                 " file\n")

    def test_an_unreachable_database_is_one_line(self):
        """nobody listening on the port: exit 1 with one line saying it cannot connect"""
        p = subprocess.run([BIN, "project", "list", "--db", "postgresql://codensm@127.0.0.1:1/codensm"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertTrue(p.stderr.startswith("codensm-server: cannot connect to the database: "), p.stderr)

    def test_a_bad_pool_size_is_refused(self):
        """--db-pool 0 or a word: exit 2 with one line naming it"""
        for bad in ("0", "many", "1001"):
            p = subprocess.run([BIN, "--db-pool", bad, "--db", PG], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(p.returncode, 2)
            self.assertEqual(p.stderr, f"codensm-server: invalid --db-pool '{bad}': expected 1..1000"
                             " connections\n")


@pg_only
class Schema(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="codensm-pg-test-")
        self.db = new_db(self.tmp)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_servers_starting_at_once_migrate_once(self):
        """six processes on an empty schema at once: all succeed, one version row, six projects"""
        procs = [subprocess.Popen([BIN, "project", "create", f"p{i}", "--db", self.db],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(6)]
        outs = [p.communicate(timeout=60) for p in procs]
        self.assertEqual([p.returncode for p in procs], [0] * 6, outs)
        self.assertEqual(psql("SELECT version FROM schema_version", schema=db_schema(self.db)), [(2,)])
        self.assertEqual(psql("SELECT COUNT(*) FROM projects", schema=db_schema(self.db)), [(6,)])

    def test_one_project_name_created_at_once_exists_once(self):
        """five processes creating one name at once: one prints keys, four say it exists"""
        cli(self.db, "project", "list")
        procs = [subprocess.Popen([BIN, "project", "create", "same", "--db", self.db],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(5)]
        outs = [p.communicate(timeout=60) for p in procs]
        self.assertEqual(sorted(p.returncode for p in procs), [0, 1, 1, 1, 1])
        self.assertEqual(sorted(e for _, e in outs if e),
                         ["codensm-server: project 'same' already exists\n"] * 4)

    def test_a_newer_schema_is_refused(self):
        """schema_version 99: exit 1 with one line naming both versions; nothing changed"""
        cli(self.db, "project", "create", "old")
        psql("INSERT INTO schema_version VALUES (99)", schema=db_schema(self.db))
        for args in (["--listen", "127.0.0.1:0"], ["project", "list"]):
            p = subprocess.run([BIN, *args, "--db", self.db], capture_output=True, text=True, timeout=30)
            self.assertEqual((p.returncode, p.stdout), (1, ""))
            self.assertEqual(p.stderr, "codensm-server: database has schema version 99, newer than this"
                             " server's 2: use a newer codensm-server\n")
        self.assertEqual(psql("SELECT name FROM projects", schema=db_schema(self.db)), [("old",)])


@pg_only
class Partitions(OnTestClock, unittest.TestCase):
    PREFIX = "codensm-pg-test-"

    def start_clock(self):
        self.t0 = (int(time.time()) // DAY - 50) * DAY + 3600   # 01:00 UTC, 50 days ago
        self.set_clock(self.t0)

    def test_days_are_created_ahead_and_dropped_past_the_horizon(self):
        """today and 3 days ahead exist at start; 40 days later the old days are dropped, new ones made"""
        key = self.srv.project("parts")["ingest"]
        self.srv.start()
        for table in ("buckets", "hist", "edges"):
            names = partitions(self.srv.db, table)
            for d in range(4):
                self.assertIn(day_name(table, self.t0 + d * DAY), names)
            self.assertNotIn(day_name(table, self.t0 + 4 * DAY), names)
        body = {"functions": [fn("p.f", 5, hist=[[10, 5]])], "edges": [{"caller": "p.f", "callee": "q", "calls": 5}],
                "_meta": {"interval": [self.t0 - 15, self.t0]}}
        self.assertEqual(self.srv.post(key, body)[0], 200)
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM buckets"), [(1,)])
        # a body of a day with no partition yet (a client's clock a day on) gets one
        self.set_clock(self.t0 + 10 * DAY)
        body["_meta"] = {"interval": [self.t0 + 10 * DAY - 15, self.t0 + 10 * DAY]}
        self.assertEqual(self.srv.post(key, body)[0], 200)
        self.assertIn(day_name("buckets", self.t0 + 10 * DAY), partitions(self.srv.db, "buckets"))
        later = self.t0 + 40 * DAY
        self.set_clock(later)
        for _ in range(100):
            if day_name("buckets", self.t0) not in partitions(self.srv.db, "buckets"):
                break
            time.sleep(0.1)
        for table in ("buckets", "hist", "edges"):
            names = partitions(self.srv.db, table)
            self.assertNotIn(day_name(table, self.t0), names)
            self.assertIn(day_name(table, self.t0 + 10 * DAY), names)
            for d in range(4):
                self.assertIn(day_name(table, later + d * DAY), names)
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM buckets"), [(1,)])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM hist"), [(1,)])
        self.assertEqual(self.srv.stop(), 0)
        with open(os.path.join(self.tmp, "server.log")) as f:
            self.assertIn("codensm-server: pruned 1 buckets, 1 histogram rows, 1 edges, 0 incidents",
                          f.read())


@pg_only
class Outage(unittest.TestCase):
    """Stops and restarts the suite's cluster: needs CODENSM_TEST_PG_DIR."""

    def setUp(self):
        if not CLUSTER:
            self.fail("CODENSM_TEST_PG_DIR is not set: run through tests/suites/server.sh")
        self.tmp = tempfile.mkdtemp(prefix="codensm-pg-test-")
        self.srv = Server(self.tmp)
        self.p = self.srv.project("outage")
        self.srv.start()

    def tearDown(self):
        subprocess.run(["bash", PGCLUSTER, "restart", CLUSTER], capture_output=True, timeout=120)
        if self.srv.proc:
            self.srv.kill9()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def calls(self):
        return self.srv.sql("SELECT COALESCE(SUM(calls), 0) FROM buckets")[0][0]

    def test_a_stopped_database_gets_503s_then_the_server_recovers(self):
        """database stopped: 503 database unavailable, one log line, no crash; restarted: 200s, exact sums"""
        key, dash = self.p["ingest"], self.p["dashboard"]
        for i in range(3):
            self.assertEqual(self.srv.post(key, {"functions": [fn("o.f", 10)], "_meta": at(5, batch_id=f"a{i}")})[0], 200)
        subprocess.run(["bash", PGCLUSTER, "stop", CLUSTER], check=True, timeout=120)
        for i in range(10):
            self.assertEqual(self.srv.post(key, {"functions": [fn("o.f", 10)], "_meta": at(5, batch_id=f"b{i}")}),
                             (503, {"error": "database unavailable"}))
            self.assertEqual(self.srv.get(dash, "outage", "summary"), (503, {"error": "database unavailable"}))
        self.assertIsNone(self.srv.proc.poll())
        subprocess.run(["bash", PGCLUSTER, "restart", CLUSTER], check=True, timeout=120)
        # the client's resends: each answered 200 at once (a pooled
        # connection the restart broke is replaced within the request)
        for i in range(10):
            self.assertEqual(self.srv.post(key, {"functions": [fn("o.f", 10)],
                                                 "_meta": at(5, batch_id=f"b{i}")}),
                             (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.srv.get(dash, "outage", "summary")[0], 200)
        self.assertEqual(self.calls(), 130)
        self.assertEqual(self.srv.stop(), 0)
        with open(os.path.join(self.tmp, "server.log")) as f:
            log = f.read()
        down = [l for l in log.splitlines() if "database unavailable" in l]
        self.assertEqual(len(down), 1, log)
        self.assertTrue(down[0].startswith("codensm-server: database unavailable, answering 503 until"
                                           " it is back: "), log)
        self.assertEqual(log.count("codensm-server: database available again\n"), 1, log)

    def test_a_restart_while_idle_costs_no_request(self):
        """the database restarts while the server is idle: the next requests are answered 200"""
        key, dash = self.p["ingest"], self.p["dashboard"]
        # fill the pool with several connections, used at once
        threads = [threading.Thread(target=self.srv.get, args=(dash, "outage", "functions")) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        subprocess.run(["bash", PGCLUSTER, "restart", CLUSTER], check=True, timeout=120)
        for i in range(8):
            self.assertEqual(self.srv.post(key, {"functions": [fn("o.f", 1)], "_meta": at(5, batch_id=f"c{i}")}),
                             (200, {"ok": True, "functions": 1}))
            self.assertEqual(self.srv.get(dash, "outage", "summary")[0], 200)
        self.assertEqual(self.calls(), 8)
        self.assertEqual(self.srv.stop(), 0)


@pg_only
class TwoServers(TwoServersOnOneDb, unittest.TestCase):
    def test_one_batch_sent_to_both_at_once_counts_once(self):
        """40 batch ids, each posted to both servers at the same moment: each applied once, sums exact"""
        key = self.p["ingest"]
        results = []

        def post(srv, i):
            results.append(srv.post(key, {"functions": [fn("two.f", 7)], "_meta": at(5, batch_id=f"x{i}")}))

        for i in range(40):
            ts = [threading.Thread(target=post, args=(s, i)) for s in (self.a, self.b)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        self.assertEqual(sorted(r[1].get("duplicate", False) for r in results), [False] * 40 + [True] * 40)
        self.assertEqual(self.a.sql("SELECT SUM(calls) FROM buckets"), [(280,)])
        self.assertEqual(self.a.sql("SELECT calls FROM usage"), [(280,)])
        self.assertEqual(self.a.sql("SELECT COUNT(*) FROM batches"), [(40,)])
        self.assertEqual((self.a.stop(), self.b.stop()), (0, 0))

    def test_the_quota_holds_across_servers(self):
        """free plan, 30 batches of 10,000 calls over both servers at once: exactly 12 accepted (120%), 18 are 429"""
        key = self.p["ingest"]
        results = []

        def post(srv, i):
            results.append(srv.post(key, {"functions": [fn(f"q.f{i % 3}", 10000)],
                                          "_meta": at(5, batch_id=f"q{i}")})[0])

        ts = [threading.Thread(target=post, args=((self.a, self.b)[i % 2], i)) for i in range(30)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(results), [200] * 12 + [429] * 18)
        self.assertEqual(self.a.sql("SELECT calls, overage FROM usage"), [(120000, 1)])
        self.assertEqual(self.a.sql("SELECT SUM(calls) FROM buckets"), [(120000,)])
        self.assertEqual(self.a.sql("SELECT SUM(calls_total) FROM functions"), [(120000,)])
        self.assertEqual(self.a.sql("SELECT COUNT(*) FROM batches"), [(12,)])
        self.assertEqual((self.a.stop(), self.b.stop()), (0, 0))


if __name__ == "__main__":
    unittest.main()
