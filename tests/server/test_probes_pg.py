"""The probe tables on PostgreSQL (docs/api.md "PostgreSQL: schema,
migrations, partitions"): a database of schema version 1, from before
probes, gains them in place with every row kept, its projects have no
manage key until `project manage-key`, and probes then work; two servers
creating probes at once keep the project's cap of active probes."""
import json
import os
import shutil
import tempfile
import threading
import unittest

from serverlib import Server, TwoServersOnOneDb, assert_probe_on_migrated, fn, pg_only

PROBE_TABLES = ["probes", "probe_reports", "probe_log", "probe_settings", "builds", "callers_seen"]


@pg_only
class ProbeSchema(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="codensm-probes-pg-test-")
        self.srv = Server(self.tmp)

    def tearDown(self):
        self.srv.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def make_v1(self):
        """Takes the database back to what a version-1 server left: no probe
        tables, no manage key column."""
        self.srv.write(*[(f"DROP TABLE {t}", ()) for t in reversed(PROBE_TABLES)],
                       ("ALTER TABLE projects DROP COLUMN manage_hash", ()),
                       ("DELETE FROM schema_version", ()),
                       ("INSERT INTO schema_version VALUES(1)", ()))

    def test_a_version_1_database_gains_the_probe_tables_with_every_row_kept(self):
        """version 1: version 2, the six probe tables empty, rows kept, no manage key until `project manage-key`, then a probe reaches the ingest answer"""
        keys = self.srv.project("legacy")
        self.srv.start()
        self.assertEqual(self.srv.post(keys["ingest"], {"functions": [fn("old.pay", 3)]})[0], 200)
        self.srv.stop()
        self.make_v1()
        self.assertEqual([t for t in PROBE_TABLES if t in self.srv.tables()], [])
        before = self.srv.sql("SELECT name, calls_total FROM functions")
        self.srv.start()
        self.assertEqual(self.srv.sql("SELECT version FROM schema_version"), [(2,)])
        self.assertEqual({t: self.srv.sql(f"SELECT COUNT(*) FROM {t}")[0][0] for t in PROBE_TABLES},
                         dict.fromkeys(PROBE_TABLES, 0))
        self.assertEqual(self.srv.sql("SELECT name, calls_total FROM functions"), before)
        self.assertEqual(self.srv.sql("SELECT name, manage_hash FROM projects"), [("legacy", None)])
        assert_probe_on_migrated(self, self.srv, "legacy", keys["ingest"])


@pg_only
class TwoServers(TwoServersOnOneDb, unittest.TestCase):
    PROJECT = "capped"

    def test_the_active_probe_cap_holds_across_servers(self):
        """70 probes created over both servers at once: exactly 64 are 201 (ids p-1..p-64), 6 are 400, 64 rows"""
        results = []

        def create(srv, i):
            body = json.dumps({"target": f"cap.f{i}", "instrument": {"type": "incr"}}).encode()
            status, _, data = srv.request("POST", "/api/projects/capped/probes", body,
                                          {"Authorization": f"Bearer {self.p['manage']}"})
            results.append((status, json.loads(data).get("id")))

        ts = [threading.Thread(target=create, args=((self.a, self.b)[i % 2], i)) for i in range(70)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(s for s, _ in results), [201] * 64 + [400] * 6)
        self.assertEqual(sorted(i for s, i in results if s == 201), sorted(f"p-{n}" for n in range(1, 65)))
        self.assertEqual(self.a.sql("SELECT COUNT(*) FROM probes"), [(64,)])
        self.assertEqual((self.a.stop(), self.b.stop()), (0, 0))


if __name__ == "__main__":
    unittest.main()
