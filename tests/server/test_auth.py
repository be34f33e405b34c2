"""Who may write and who may read: ingest keys write their own project
only, dashboard keys read their own project only, keys are compared in
constant time by construction, and the server listens on loopback unless
told otherwise.  (test_ingest.py and test_api.py hold the basic 401/404s.)"""
import os
import re
import subprocess
import time

from serverlib import ROOT, BIN, ServerTest, Server, fn, at

VIEWS = ["summary", "departments", "functions", "office", "debt", "underuse", "incidents",
         "graph", "prompt"]


class Keys(ServerTest):
    @classmethod
    def prepare(cls):
        cls.a = cls.srv.project("alpha")
        cls.b = cls.srv.project("beta")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for key, name in [(cls.a["ingest"], "alpha.only"), (cls.b["ingest"], "beta.secret")]:
            status, _ = cls.srv.post(key, {"functions": [fn(name, 5, 1)],
                                           "edges": [{"caller": name, "callee": name, "calls": 1}],
                                           "_meta": at(5)})
            assert status == 200

    def stored(self):
        return self.srv.sql("SELECT p.name, f.name, f.calls_total FROM functions f"
                            " JOIN projects p ON p.id = f.project ORDER BY 1, 2")

    def test_bad_ingest_keys_are_401_and_write_nothing(self):
        """no key, an empty key, another scheme, a changed, cut or lengthened key, a dashboard key: 401"""
        before = self.stored()
        k = self.a["ingest"]
        flipped = k[:-1] + ("a" if k[-1] != "a" else "b")
        body = {"functions": [fn("intruder", 1)]}
        for headers in [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer"},
                        {"Authorization": f"Basic {k}"}, {"Authorization": k},
                        {"Authorization": f"Bearer {flipped}"}, {"Authorization": f"Bearer {k[:-1]}"},
                        {"Authorization": f"Bearer {k}x"}, {"Authorization": f"Bearer {k.upper()}"},
                        {"Authorization": f"Bearer {self.a['dashboard']}"},
                        {"Authorization": f"Bearer cnsm_{'a' * 32}"}, {"X-Api-Key": k}]:
            status, answer = self.srv.post(None, body, headers)
            self.assertEqual((status, answer), (401, {"error": "missing or unknown ingest key"}),
                             headers)
        self.assertEqual(self.stored(), before)

    def test_each_dashboard_key_reads_its_own_project_only(self):
        """every view: 401 without a key or with an ingest key, 404 with the other project's key"""
        for view in VIEWS:
            params = {"fn": "alpha.only"} if view in ("graph", "prompt") else {}
            self.assertEqual(self.srv.get(self.a["dashboard"], "alpha", view, **params)[0], 200, view)
            for key in [None, self.a["ingest"], self.a["dashboard"][:-1], "cnsmv_" + "a" * 32]:
                self.assertEqual(self.srv.get(key, "alpha", view, **params),
                                 (401, {"error": "missing or unknown dashboard key"}), (view, key))
            self.assertEqual(self.srv.get(self.b["dashboard"], "alpha", view, **params),
                             (404, {"error": "project 'alpha' not found"}), view)

    def test_no_answer_of_one_project_mentions_the_other(self):
        """alpha's views never name beta's functions, even when asked for them by name"""
        for view in VIEWS:
            params = {"fn": "beta.secret"} if view in ("graph", "prompt") else {}
            status, answer = self.srv.get(self.a["dashboard"], "alpha", view, **params)
            if view in ("graph", "prompt"):
                # the same answer as for a name that exists nowhere
                self.assertEqual((status, answer),
                                 (404, {"error": "function 'beta.secret' not found"}), view)
                self.assertEqual(self.srv.get(self.a["dashboard"], "alpha", view, fn="no.such")[0],
                                 404)
            else:
                self.assertNotIn("beta.secret", repr(answer), view)
        status, answer = self.srv.get(self.b["dashboard"], "beta", "functions")
        self.assertEqual([r["name"] for r in answer["rows"]], ["beta.secret"])


class ConstantTime(ServerTest):
    """By construction: the code is read, not timed (a timing test on a
    shared machine would be noise).  These assertions fail if someone
    replaces the comparison with memcmp or looks a key up in an index."""

    def source(self, name):
        with open(os.path.join(ROOT, "tools", "server", name)) as f:
            return f.read()

    def test_hashes_are_compared_with_crypto_memcmp(self):
        """srv_hash_equal is CRYPTO_memcmp over the whole 32-byte hash; nothing else compares keys"""
        keys = self.source("keys.c")
        body = re.search(r"int srv_hash_equal\([^)]*\)\s*\{(.*?)\n\}", keys, re.S).group(1)
        self.assertIn("CRYPTO_memcmp(a, b, SRV_HASHLEN)", body)
        for name in os.listdir(os.path.join(ROOT, "tools", "server")):
            if not name.endswith(".c"):
                continue
            for call in re.findall(r"\b(?:memcmp|strcmp|strncmp|strcasecmp|bcmp)\([^;]*?\)",
                                   self.source(name)):
                # the public prefix "cnsm_"/"cnsmv_" may be checked plainly
                low = call.lower()
                if "hash" in low or ("key" in low and "prefix" not in low):
                    self.fail(f"{name}: {call} compares a key or hash in variable time")

    def test_keys_are_matched_by_scanning_every_project(self):
        """srv_project_by_key hashes the key, reads every project and compares each hash, with no early exit"""
        store = self.source("store.c")
        fn_body = re.search(r"int srv_project_by_key\(.*?\n\}", store, re.S).group(0)
        self.assertIn("srv_key_hash(key, h)", fn_body)
        self.assertIn("srv_hash_equal(stored, h)", fn_body)
        self.assertNotIn("break", fn_body)
        self.assertNotRegex(fn_body, r"WHERE[^\"]*hash", "a key looked up through an index")
        self.assertNotRegex(store + self.source("api.c") + self.source("ingest.c"),
                            r"(ingest|dashboard)_hash\s*=\s*\?", "a key looked up through an index")


def listeners(pid):
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


class Loopback(ServerTest):
    def test_listen_address_is_loopback(self):
        """ss shows the server listening on 127.0.0.1 only"""
        self.assertEqual(listeners(self.srv.proc.pid), [f"127.0.0.1:{self.srv.port}"])

    def test_default_listen_is_loopback_8650(self):
        """with no --listen and no $CODENSM_LISTEN, ss shows 127.0.0.1:8650 and nothing else"""
        env = {k: v for k, v in os.environ.items() if k != "CODENSM_LISTEN"}
        p = subprocess.Popen([BIN, "--db", os.path.join(self.tmp, "default.db")], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = p.stdout.readline().decode()
            if not line:
                err = p.stderr.read().decode()
                if "cannot listen" in err:
                    self.skipTest(f"port 8650 is taken on this machine: {err.strip()}")
                self.fail(f"the server did not start: {err}")
            self.assertEqual(line.strip(), "listening on http://127.0.0.1:8650")
            for _ in range(50):
                got = listeners(p.pid)
                if got:
                    break
                time.sleep(0.1)
            self.assertEqual(got, ["127.0.0.1:8650"])
        finally:
            p.terminate()
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
