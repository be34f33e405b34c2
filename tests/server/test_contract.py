"""tests/contract/: every accepted example is a 200, every rejected one
its status and error."""
import glob
import json
import os
import unittest

from serverlib import ROOT, ServerTest

CONTRACT = os.path.join(ROOT, "tests", "contract")


class Contract(ServerTest):
    @classmethod
    def prepare(cls):
        cls.key = cls.srv.project("contract")["ingest"]

    def test_accepted_examples(self):
        """each accepted/*.json answers 200 with its number of functions"""
        files = sorted(glob.glob(os.path.join(CONTRACT, "accepted", "*.json")))
        self.assertGreater(len(files), 5)
        for path in files:
            with open(path, "rb") as f:
                raw = f.read()
            n = len(json.loads(raw).get("functions", []))
            self.assertEqual(self.srv.post(self.key, raw), (200, {"ok": True, "functions": n}), path)

    def test_rejected_examples(self):
        """each rejected/STATUS-*.json answers STATUS and the error of its .error file"""
        files = sorted(glob.glob(os.path.join(CONTRACT, "rejected", "*.json")))
        self.assertGreater(len(files), 5)
        for path in files:
            status = int(os.path.basename(path).split("-", 1)[0])
            with open(path, "rb") as f:
                raw = f.read()
            with open(path[:-5] + ".error") as f:
                error = f.read().rstrip("\n")
            got_status, body = self.srv.post(self.key, raw)
            self.assertEqual(got_status, status, path)
            if error == "invalid json":
                self.assertTrue(body["error"].startswith("invalid json: "), (path, body))
            else:
                self.assertEqual(body, {"error": error}, path)
        self.assertEqual(self.srv.sql("SELECT COUNT(*) FROM functions WHERE name IN ('a', 'b', 'bad')"), [(0,)])


if __name__ == "__main__":
    unittest.main()
