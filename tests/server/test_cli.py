"""codensm-server's command line: projects, keys stored hashed, errors."""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from serverlib import BIN, PG, Server, cli, new_db


class Cli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="codensm-cli-test-")
        self.db = new_db(self.tmp, "x.db")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_bin(self, *args, env=None):
        e = dict(os.environ)
        e.pop("CODENSM_DB", None)
        e.pop("CODENSM_LISTEN", None)
        e.update(env or {})
        return subprocess.run([BIN, *args], capture_output=True, text=True, cwd=self.tmp, env=e, timeout=30)

    def test_project_create_prints_keys_and_address(self):
        """project create prints the plan, both keys and the dashboard address"""
        rc, out, err = cli(self.db, "project", "create", "shop", "--plan", "team")
        m = re.fullmatch(r"project: shop\nplan: team\ningest key: (cnsm_[a-z2-7]{32})\n"
                         r"dashboard key: (cnsmv_[a-z2-7]{32})\n"
                         r"dashboard: http://127\.0\.0\.1:8650/#project=shop&key=(cnsmv_[a-z2-7]{32})\n", out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(2), m.group(3))
        self.assertEqual((rc, err), (0, ""))

    def test_keys_are_stored_as_sha256(self):
        """the database holds SHA-256 hashes of the keys, never the keys"""
        _, out, _ = cli(self.db, "project", "create", "hashed")
        keys = dict(line.split(": ", 1) for line in out.strip().splitlines())
        s = Server(self.tmp)
        s.db = self.db
        rows = s.sql("SELECT ingest_hash, dashboard_hash FROM projects WHERE name = 'hashed'")
        self.assertEqual(rows, [(hashlib.sha256(keys["ingest key"].encode()).digest(),
                                 hashlib.sha256(keys["dashboard key"].encode()).digest())])
        if not PG:
            with open(self.db, "rb") as f:
                raw = f.read()
            self.assertNotIn(keys["ingest key"].encode(), raw)

    def test_two_projects_get_different_keys(self):
        """every key is drawn fresh"""
        outs = [cli(self.db, "project", "create", n)[1] for n in ("a1", "a2")]
        self.assertEqual(len(set(re.findall(r"cnsmv?_[a-z2-7]{32}", "".join(outs)))), 4)

    def test_errors_are_one_line_naming_the_subject(self):
        """a duplicate, a bad plan, a bad name, an unknown command: one lowercase line each"""
        cli(self.db, "project", "create", "dup")
        cases = [(("project", "create", "dup", "--db", self.db), 1,
                  "codensm-server: project 'dup' already exists\n"),
                 (("project", "create", "p", "--plan", "gold", "--db", self.db), 1,
                  "codensm-server: unknown plan 'gold': use free, team or scale\n"),
                 (("project", "create", "a/b", "--db", self.db), 1,
                  "codensm-server: invalid project name 'a/b': use 1..64 of A-Z a-z 0-9 . _ -\n"),
                 (("--listen", "nowhere", "--db", self.db), 1,
                  "codensm-server: invalid listen address 'nowhere': expected HOST:PORT\n"),
                 (("project", "create", "x", "--db", os.path.join(self.tmp, "no", "such", "dir.db")), 1,
                  None)][:None if not PG else -1]   # a missing folder is SQLite's case
        for args, rc, err in cases:
            p = self.run_bin(*args)
            self.assertEqual(p.returncode, rc, args)
            if err:
                self.assertEqual(p.stderr, err, args)
            else:
                self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
                self.assertTrue(p.stderr.startswith("codensm-server: cannot open database"), p.stderr)
        p = self.run_bin("frobnicate")
        self.assertEqual(p.returncode, 2)
        self.assertTrue(p.stderr.startswith("codensm-server: unknown command 'frobnicate'\n"), p.stderr)

    def test_project_list_and_codensm_db(self):
        """project list shows each project and its month; $CODENSM_DB picks the file"""
        env = {"CODENSM_DB": self.db}
        self.assertEqual(self.run_bin("project", "create", "listed", "--plan", "scale", env=env).returncode, 0)
        p = self.run_bin("project", "list", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"\nlisted +scale +0  0% of quota\n")
        if PG:
            return
        p = self.run_bin("project", "list")  # ./codensm.db in the working directory
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("listed", p.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "codensm.db")))

    def test_listen_defaults_to_loopback(self):
        """with no --listen the usage says 127.0.0.1:8650, and port 0 prints the bound port"""
        self.assertIn("127.0.0.1:8650", self.run_bin("--help").stdout)
        s = Server(self.tmp).start()
        try:
            self.assertGreater(s.port, 0)
        finally:
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main()
