"""The schema: a database of the first server (schema version 0, built here
from its SQL in data/schema_v0.sql) is migrated in place with every row;
a database newer than the server is refused; the foreign keys are real."""
import hashlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
import unittest

from serverlib import (BIN, Server, assert_probe_on_migrated, cli, fn,
                       sqlite_only)

HERE = os.path.dirname(os.path.abspath(__file__))
V0_SQL = open(os.path.join(HERE, "data", "schema_v0.sql")).read()
INGEST = "cnsm_" + "a" * 32
DASH = "cnsmv_" + "b" * 32
OTHER_INGEST = "cnsm_" + "c" * 32
OTHER_DASH = "cnsmv_" + "d" * 32


def sha(key):
    return hashlib.sha256(key.encode()).digest()


def make_v0(path, now, estimated=True):
    """A version-0 database as the first server left it: two projects, and
    rows in every table (plus the orphans it never prevented)."""
    con = sqlite3.connect(path)
    sql = V0_SQL if estimated else V0_SQL.replace(" estimated INTEGER NOT NULL DEFAULT 0,", "")
    con.executescript(sql)
    b = int(now) - int(now) % 60 - 120            # two minutes ago
    month = time.strftime("%Y-%m", time.gmtime(now))
    with con:
        con.execute("INSERT INTO projects VALUES(1, 'legacy', 'free', ?, ?, ?)",
                    (sha(INGEST), sha(DASH), now - 86400))
        con.execute("INSERT INTO projects VALUES(2, 'other', 'team', ?, ?, ?)",
                    (sha(OTHER_INGEST), sha(OTHER_DASH), now - 86400))
        con.executemany("INSERT INTO functions(id, project, name, department, value_weight, file, line,"
                        " first_seen, last_seen, in_inventory, calls_total) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                        [(1, 1, "old.pay", "billing", 2.0, "pay.c", 10, b, b, 1, 30),
                         (2, 1, "old.log", "ops", 1.0, None, None, b - 3600, b, 0, 7),
                         (3, 1, "old.never", "ops", 1.0, "n.c", 1, None, None, 1, 0),
                         (4, 2, "other.f", "x", 1.0, None, None, b, b, 0, 5)])
        cols = "(project, bucket_start, function, calls, errors, total_ms, self_ms, max_ms, value"
        cols += ", estimated)" if estimated else ")"
        rows = [(1, b, 1, 20, 2, 40.0, 30.0, 5.0, 36.0), (1, b - 3600, 1, 10, 0, 20.0, 20.0, 3.0, 20.0),
                (1, b - 3600, 2, 7, 1, 7.0, 7.0, 1.0, 6.0), (2, b, 4, 5, 0, 5.0, 5.0, 1.0, 5.0)]
        if estimated:
            rows = [r + (i,) for i, r in enumerate(rows)]
        con.executemany(f"INSERT INTO buckets{cols} VALUES({','.join('?' * len(rows[0]))})", rows)
        con.executemany("INSERT INTO hist VALUES(?,?,?,?,?)",
                        [(1, b, 1, 40, 15), (1, b, 1, 42, 5), (1, b - 3600, 1, 40, 10), (2, b, 4, 30, 5)])
        con.executemany("INSERT INTO edges VALUES(?,?,?,?,?)",
                        [(1, b, "old.api", "old.pay", 20), (1, b - 3600, "old.api", "old.pay", 10),
                         (1, b, "old.pay", "old.log", 4), (2, b, "other.main", "other.f", 5)])
        con.execute("INSERT INTO incidents VALUES(1, 1, ?, 'error', 0, ?, 'old.pay', 2, ?, ?)",
                    (b"h" * 32, '[{"file":null,"line":null,"name":"old.api"},'
                     '{"file":"pay.c","line":10,"name":"old.pay"}]', b, b + 30))
        con.executemany("INSERT INTO batches VALUES(?,?,?)",
                        [(1, "batch-1", b), (1, "batch-2", b + 1), (2, "batch-1", b)])
        con.executemany("INSERT INTO usage VALUES(?,?,?,?)",
                        [(1, month, 37, 0), (1, "2026-01", 99, 1), (2, month, 5, 0)])
        # orphans: rows of a project and a function that no longer exist
        con.execute("INSERT INTO buckets(project, bucket_start, function, calls, errors, total_ms,"
                    " self_ms, max_ms, value) VALUES(9, ?, 99, 1, 0, 1.0, 1.0, 1.0, 1.0)", (b,))
        con.execute("INSERT INTO batches VALUES(9, 'orphan', ?)", (b,))
    con.close()


PROBE_TABLES = ["probes", "probe_reports", "probe_log", "probe_settings", "builds", "callers_seen"]


def make_v2(path):
    """Takes a current file back to what a version-2 server left: no probe
    tables, no manage key."""
    con = sqlite3.connect(path)
    for t in reversed(PROBE_TABLES):
        con.execute(f"DROP TABLE {t}")
    con.execute("ALTER TABLE projects DROP COLUMN manage_hash")
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()


COUNTS_V0 = {"projects": 2, "functions": 4, "buckets": 4, "hist": 4, "edges": 4, "incidents": 1,
             "batches": 3, "usage": 3}


@sqlite_only
class Migration(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="codensm-schema-test-")
        self.srv = Server(self.tmp)
        self.now = time.time()

    def tearDown(self):
        if self.srv.proc:
            self.srv.kill9()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def counts(self, tables):
        return {t: self.srv.sql(f"SELECT COUNT(*) FROM {t}")[0][0] for t in tables}

    def test_a_version_0_file_is_migrated_in_place_with_every_row(self):
        """today's file: every row kept (orphans left behind), version 3, foreign keys hold, views answer"""
        make_v0(self.srv.db, self.now)
        self.assertEqual(self.srv.sql("PRAGMA user_version"), [(0,)])
        self.assertEqual(self.counts(COUNTS_V0), {**COUNTS_V0, "buckets": 5, "batches": 4})
        self.srv.start()
        self.assertEqual(self.srv.sql("PRAGMA user_version"), [(3,)])
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM flows"), [(0,)])
        self.assertEqual(self.counts(PROBE_TABLES), dict.fromkeys(PROBE_TABLES, 0))
        self.assertEqual(self.counts(COUNTS_V0), COUNTS_V0)
        self.assertEqual(self.counts(["names"]), {"names": 5})
        self.assertEqual(self.srv.sql("PRAGMA foreign_key_check"), [])
        self.assertEqual(self.srv.sql("SELECT name FROM sqlite_master WHERE name LIKE 'v0_%'"), [])
        # the lifetime counters start from the buckets' sums
        self.assertEqual(self.srv.sql("SELECT name, calls_total, errors_total, total_ms_total, value_total"
                                      " FROM functions ORDER BY id"),
                         [("old.pay", 30, 2, 60.0, 56.0), ("old.log", 7, 1, 7.0, 6.0),
                          ("old.never", 0, 0, 0.0, 0.0), ("other.f", 5, 0, 5.0, 5.0)])
        self.assertEqual(self.srv.sql("SELECT project, month_start, calls, overage FROM usage"
                                      " WHERE calls = 99"), [(1, 1767225600, 99, 1)])
        # the views read the migrated rows
        status, s = self.srv.get(DASH, "legacy", "summary", window="24h")
        self.assertEqual((status, s["calls"], s["errors"], s["nsm"], s["functions"]), (200, 37, 3, 62.0, 3))
        _, g = self.srv.get(DASH, "legacy", "graph", fn="old.pay", window="24h")
        self.assertEqual(g["edges"], [{"caller": "old.api", "callee": "old.pay", "calls": 30},
                                      {"caller": "old.pay", "callee": "old.log", "calls": 4}])
        _, rows = self.srv.get(DASH, "legacy", "functions", q="old.pay")
        self.assertEqual([(r["calls"], r["estimated_calls"], r["p50_ms"] is not None) for r in rows["rows"]],
                         [(30, 1, True)])
        _, inc = self.srv.get(DASH, "legacy", "incidents")
        self.assertEqual([(i["count"], i["chain"][-1]["name"]) for i in inc["incidents"]], [(2, "old.pay")])
        # the old batch ids still deduplicate, and the month's usage continues
        self.assertEqual(self.srv.post(INGEST, {"functions": [fn("old.pay", 1)], "_meta": {"batch_id": "batch-1"}}),
                         (200, {"ok": True, "functions": 1, "duplicate": True}))
        self.assertEqual(self.srv.post(INGEST, {"functions": [fn("old.pay", 3)], "_meta": {"batch_id": "batch-3"}}),
                         (200, {"ok": True, "functions": 1}))
        self.assertEqual(self.srv.sql("SELECT calls FROM usage WHERE project = 1 AND calls != 99"), [(40,)])
        self.assertEqual(self.srv.stop(), 0)
        _, out, _ = cli(self.srv.db, "project", "list")
        self.assertIn(f"{'legacy':<24} {'free':<6} {40:>14}  0% of quota\n", out)

    def test_a_version_0_file_older_than_estimated_calls_is_migrated(self):
        """a version-0 file without buckets.estimated migrates with 0 for it"""
        make_v0(self.srv.db, self.now, estimated=False)
        self.assertNotIn("estimated", [r[1] for r in self.srv.sql("PRAGMA table_info(buckets)")])
        self.srv.start()
        self.assertEqual(self.counts(COUNTS_V0), COUNTS_V0)
        self.assertEqual(self.srv.sql("SELECT SUM(calls), SUM(estimated) FROM buckets"), [(42, 0)])

    def test_a_failed_migration_leaves_the_file_as_it_was(self):
        """a migration that fails midway rolls back: version 0, every table as before, one line"""
        make_v0(self.srv.db, self.now)
        con = sqlite3.connect(self.srv.db)
        con.execute("CREATE TABLE names(x)")      # in the way of the new schema
        con.commit()
        con.close()
        before = {t: self.srv.sql(f"SELECT * FROM {t}") for t in COUNTS_V0}
        code, out, err = cli(self.srv.db, "project", "list", check=False)
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertTrue(err.startswith(f"codensm-server: cannot migrate database '{self.srv.db}'"
                                       " to schema version 3: database: table names already exists"), err)
        self.assertEqual(self.srv.sql("PRAGMA user_version"), [(0,)])
        self.assertEqual({t: self.srv.sql(f"SELECT * FROM {t}") for t in COUNTS_V0}, before)

    def test_a_newer_file_is_refused(self):
        """a file of schema version 4: exit 1, one line naming both versions, the file untouched"""
        cli(self.srv.db, "project", "create", "future")
        con = sqlite3.connect(self.srv.db)
        con.execute("PRAGMA user_version = 4")
        con.close()
        for args in (["--listen", "127.0.0.1:0"], ["project", "list"]):
            p = subprocess.run([BIN, *args, "--db", self.srv.db], capture_output=True, text=True, timeout=10)
            self.assertEqual((p.returncode, p.stdout, p.stderr),
                             (1, "", f"codensm-server: database '{self.srv.db}' has schema version 4,"
                                     " newer than this server's 3: use a newer codensm-server\n"))
        self.assertEqual(self.srv.sql("PRAGMA user_version"), [(4,)])

    def test_a_version_1_file_gains_the_flows_table_with_every_row_kept(self):
        """a version-1 file (no flows table): version 3, rows kept, flows stored and served"""
        make_v0(self.srv.db, self.now)
        self.srv.start()
        self.srv.stop()
        make_v2(self.srv.db)
        con = sqlite3.connect(self.srv.db)
        con.execute("DROP TABLE flows")          # what a version-1 server left
        con.execute("PRAGMA user_version = 1")
        con.commit()
        con.close()
        before = self.counts(COUNTS_V0)
        self.srv.start()
        self.assertEqual(self.srv.sql("PRAGMA user_version"), [(3,)])
        self.assertEqual(self.counts(COUNTS_V0), before)
        f = {"name": "old.pay", "nodes": [{"type": "start"}, {"type": "end"}], "edges": [[0, 1]],
             "decisions": 0, "loops": 0, "returns": 1, "nodes_count": 2, "lines": 3,
             "calls_out": [], "has_tests": False}
        self.assertEqual(self.srv.post(INGEST, {"functions": [], "flows": [f]}), (200, {"ok": True, "functions": 0}))
        _, rows = self.srv.get(DASH, "legacy", "functions", q="old.pay")
        self.assertEqual([(r["name"], r["lines"], r["has_tests"]) for r in rows["rows"]], [("old.pay", 3, False)])

    def test_a_version_2_file_gains_the_probe_tables_and_a_manage_key_on_demand(self):
        """a version-2 file: version 3, every row kept, no manage key until `project manage-key`, then probes work"""
        make_v0(self.srv.db, self.now)
        self.srv.start()
        self.srv.stop()
        make_v2(self.srv.db)
        before = {t: self.srv.sql(f"SELECT * FROM {t}") for t in COUNTS_V0}
        self.srv.start()
        self.assertEqual(self.srv.sql("PRAGMA user_version"), [(3,)])
        self.assertEqual({t: self.srv.sql(f"SELECT * FROM {t}") for t in COUNTS_V0 if t != "projects"},
                         {t: v for t, v in before.items() if t != "projects"})
        self.assertEqual(self.srv.sql("SELECT id, name, manage_hash FROM projects ORDER BY id"),
                         [(1, "legacy", None), (2, "other", None)])
        self.assertEqual(self.srv.sql("PRAGMA foreign_key_check"), [])
        assert_probe_on_migrated(self, self.srv, "legacy", INGEST)

    def test_the_foreign_keys_are_real(self):
        """a bucket of a function, an edge of a name, a row of a project that does not exist: refused"""
        cli(self.srv.db, "project", "create", "keys")
        con = sqlite3.connect(self.srv.db)
        con.execute("PRAGMA foreign_keys = ON")
        bad = ["INSERT INTO functions(project, name, department, value_weight) VALUES(42, 'f', 'd', 1)",
               "INSERT INTO buckets VALUES(1, 0, 42, 1, 0, 1.0, 1.0, 1.0, 1.0, 0)",
               "INSERT INTO hist VALUES(1, 0, 42, 1, 1)",
               "INSERT INTO edges VALUES(1, 0, 42, 43, 1)",
               "INSERT INTO names(project, name) VALUES(42, 'n')",
               "INSERT INTO incidents(project, chain_hash, kind, signal, chain, function, count,"
               " first_seen, last_seen) VALUES(42, x'00', 'error', 0, '[]', 'f', 1, 0, 0)",
               "INSERT INTO batches VALUES(42, 'b', 0)",
               "INSERT INTO usage VALUES(42, 0, 1, 0)",
               "INSERT INTO probes(project, id, target, type, lifespan, lastmodified, expires_at, created_at)"
               " VALUES(42, 'p', 't', 'incr', 1, 0, 60, 0)",
               "INSERT INTO probe_reports VALUES(1, 'nosuch', 's', 'h', 1, 'EMITTING', NULL, 1, NULL, 0, NULL, 0, 0)",
               "INSERT INTO probe_settings VALUES(42, 1, 0)",
               "INSERT INTO builds VALUES(42, 's', 'b', 0, 0)"]
        for sql in bad:
            with self.assertRaisesRegex(sqlite3.IntegrityError, "FOREIGN KEY constraint failed", msg=sql):
                con.execute(sql)
        # and a project's rows go with it
        con.execute("INSERT INTO functions(id, project, name, department, value_weight) VALUES(7, 1, 'f', 'd', 1)")
        con.execute("INSERT INTO buckets VALUES(1, 0, 7, 1, 0, 1.0, 1.0, 1.0, 1.0, 0)")
        con.execute("DELETE FROM projects WHERE id = 1")
        self.assertEqual(con.execute("SELECT (SELECT COUNT(*) FROM functions) + (SELECT COUNT(*) FROM buckets)")
                         .fetchall(), [(0,)])
        con.close()


if __name__ == "__main__":
    unittest.main()
