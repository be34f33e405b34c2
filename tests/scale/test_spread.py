"""Two and three servers on one store, clients spread over them: the sums,
the monthly quota, batch deduplication and `project create` stay exact,
on SQLite (several processes on one WAL file) and on PostgreSQL."""
import subprocess
import threading
import unittest

from scalelib import (BIN, Client, Load, ScaleTest, Server, api, api_sums, cli, create_project,
                      payload, stored_batches, sums)


class Spread:
    def spread(self, n, name):
        project = create_project(self.db, name)
        servers = self.servers_up(n)
        self.load = Load(servers, project["ingest"], threads=4 * n, seconds=6, tag=name).start()
        self.assertTrue(self.load.join(), "the client threads finished")
        acked = self.load.acked()
        self.assertEqual({b for b, s in self.load.final.items() if s != 200}, set(),
                         "every batch was answered 200 in the end")
        self.assertGreater(len(acked), 20 * n)
        per_server = [sum(1 for a in self.load.attempts if a[1] == i and a[4] == 200)
                      for i in range(n)]
        self.assertTrue(all(per_server), f"every server took requests: {per_server}")
        for s in servers:
            self.assertStoreEquals(project, acked, s.port)
        self.stop_all()

    def test_start_at_once(self):
        """three servers started at the same moment on a new, empty store all come up (5 rounds)"""
        for r in range(5):
            db = self.store.fresh(f"fresh{r}")
            servers = [Server(self.tmp, db, f"fresh{r}-{i}").spawn() for i in range(3)]
            self.servers += servers
            failed = []
            for s in servers:
                try:
                    s.ready()
                except AssertionError as e:
                    failed.append(str(e))
            self.assertEqual(failed, [], f"round {r}")
            project = create_project(db, "fresh")
            for i, s in enumerate(servers):
                self.assertEqual(Client().post(s.port, project["ingest"], payload(f"f{r}", i)[0])[0], 200)
        self.stop_all()

    def test_two_servers_sums_exact(self):
        """two servers, 8 clients: the store and every server's dashboard equal exactly what was answered 200"""
        self.spread(2, "two")

    def test_three_servers_sums_exact(self):
        """three servers started at once on one store, 12 clients: the sums are exact on every server"""
        self.spread(3, "three")

    def test_quota_across_servers(self):
        """free plan over three servers at once: exactly the batches up to 120% accepted, the rest 429, overage flagged"""
        project = create_project(self.db, "quota", plan="free")
        servers = self.servers_up(3)
        # 200 batches of 997 calls (6 functions, 997 in all) from 12 threads:
        # 120 fit under 120,000 (119,640), the 121st would not.
        bodies = [payload("q", i, calls=[167] + 5 * [166])[0] for i in range(200)]
        answers = [None] * len(bodies)

        def worker(t):
            cl = Client()
            for i in range(t, len(bodies), 12):
                answers[i] = cl.post_until_answered(servers[i % 3].port, project["ingest"],
                                                    bodies[i])
            cl.close()
        ts = [threading.Thread(target=worker, args=(t,)) for t in range(12)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        count = {}
        for a in answers:
            count[a and a[0]] = count.get(a and a[0], 0) + 1
        self.assertEqual(count, {200: 120, 429: 80})
        self.assertTrue(all(a[1] == {"error": "quota_exceeded"} for a in answers if a[0] == 429))
        s = api(servers[1].port, project["dashboard"], "quota", "summary", window="24h")
        self.assertEqual(s["calls"], 120 * 997)
        # the last 360 calls to 120,000 exactly fit, through another server; one more does not
        cl = Client()
        body, _, _ = payload("q-last", 0, calls=6 * [60])
        self.assertEqual(cl.post(servers[2].port, project["ingest"], body),
                         (200, {"ok": True, "functions": 6, "probes": {}}))
        body, _, _ = payload("q-over", 0, calls=[1] + 5 * [0])
        self.assertEqual(cl.post(servers[0].port, project["ingest"], body),
                         (429, {"error": "quota_exceeded"}))
        cl.close()
        rc, out, err = cli(self.db, "project", "list")
        self.assertEqual(rc, 0, err)
        line = [l for l in out.splitlines() if l.startswith("quota ")]
        self.assertEqual([l.split() for l in line],
                         [["quota", "free", "120000", "120%", "of", "quota,", "overage"]])
        self.assertEqual(len(stored_batches(self.store, "quota")), 121)
        self.stop_all()

    def test_same_batch_to_every_server_counts_once(self):
        """the same batch id posted to three servers at the same moment: applied once, the others answered duplicate"""
        project = create_project(self.db, "dedup")
        servers = self.servers_up(3)
        batches = [payload("dup", i) for i in range(40)]
        answers = {i: [] for i in range(len(batches))}
        gate = threading.Barrier(3)

        def worker(k):
            cl = Client()
            for i, (body, _, _) in enumerate(batches):
                gate.wait()
                answers[i].append(cl.post_until_answered(servers[k].port, project["ingest"], body))
            cl.close()
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        for i, got in answers.items():
            self.assertEqual(sorted(got, key=lambda a: "duplicate" in a[1]),
                             [(200, {"ok": True, "functions": 6, "probes": {}})]
                             + 2 * [(200, {"ok": True, "functions": 6, "duplicate": True, "probes": {}})],
                             f"batch dup-{i}")
        want = sums(c for _, c, _ in batches)
        for s in servers:
            self.assertEqual(api_sums(s.port, project), want)
        self.assertEqual(stored_batches(self.store, "dedup"), {f"dup-{i}" for i in range(40)})
        self.stop_all()

    def test_project_create_race(self):
        """one project name created from two servers' command lines at once, ten times: exactly one wins each time"""
        servers = self.servers_up(2)
        for r in range(10):
            name = f"race{r}"
            ps = [subprocess.Popen([BIN, "project", "create", name, "--db", self.db,
                                    "--listen", f"127.0.0.1:{s.port}"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for s in servers]
            res = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in ps]
            for p in ps:
                p.stdout.close()
                p.stderr.close()
            won = [x for x in res if x[0] == 0]
            lost = [x for x in res if x[0] != 0]
            self.assertEqual(len(won), 1, f"{name}: {res}")
            self.assertEqual([(x[0], x[1], x[2]) for x in lost],
                             [(1, "", f"codensm-server: project '{name}' already exists\n")])
            key = dict(l.split(": ", 1) for l in won[0][1].splitlines())["ingest key"]
            body, _, _ = payload(name, 0)
            for s in servers:   # the winner's key works on every server
                self.assertEqual(Client().post(s.port, key, body)[0], 200)
        rc, out, _ = cli(self.db, "project", "list")
        names = [l.split()[0] for l in out.splitlines()[1:]]
        self.assertEqual(sorted(n for n in names if n.startswith("race")),
                         [f"race{r}" for r in range(10)])
        self.stop_all()


class SpreadSQLite(Spread, ScaleTest):
    backend = "sqlite"


class SpreadPostgreSQL(Spread, ScaleTest):
    backend = "postgresql"


if __name__ == "__main__":
    unittest.main()
