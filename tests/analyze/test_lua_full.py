"""test_lua_full.py: a real program end to end in CODENSM_MODE=full:
Debian's Lua 5.4 (tests/real/build.sh lua), analysed with `codensm
analyze`, runs tests/real/lua/bench.lua against the real codensm-server;
every function of the binary (called or not) has its flow stored, equal to
the analysis; the diagram of the largest one renders in chromium.  Prints the payload bytes
per function and the times (the figures docs/flows.md reports)."""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "server"))
sys.path.insert(0, os.path.join(HERE, "..", "browser"))
from test_analyze import AnalyzeCase, build_id  # noqa: E402
from harness import run  # noqa: E402
from serverlib import BIN as SERVER, Server  # noqa: E402
from cdp import Browser, find_chromium  # noqa: E402
from test_analyze import LUA, lua_database  # noqa: E402

BENCH = os.path.join(HERE, "..", "real", "lua", "bench.lua")
ARTIFACTS = os.path.join(HERE, "..", "artifacts")


class TestLuaFullMode(AnalyzeCase):
    def setUp(self):
        super().setUp()
        if not os.access(SERVER, os.X_OK):
            self.skipTest(f"{SERVER} not built")
        exe = os.path.join(LUA, "lua")
        if not os.path.exists(exe):
            b = subprocess.run(["bash", os.path.join(HERE, "..", "real", "build.sh"), "lua"],
                               capture_output=True, text=True)
            self.assertEqual(b.returncode, 0, "tests/real/build.sh lua failed:\n" + b.stderr[-2000:])
        self.exe = exe
        self.srv = None

    def tearDown(self):
        if self.srv:
            self.srv.stop()
        super().tearDown()

    def test_lua_s_flows_reach_the_server_once_each_and_the_diagram_renders(self):
        """bench.lua under CODENSM_MODE=full: one stored flow per function of lua, equal to the analysis; luaV_execute drawn"""
        db = lua_database(os.path.join(self.tmp, "lua"))
        t0 = time.monotonic()
        r = self.analyze("-p", db, self.exe)  # to $XDG_CACHE_HOME/codensm/flows, where the runtime looks
        analysis_s = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r)
        with open(os.path.join(self.tmp, "codensm", "flows", build_id(self.exe) + ".json")) as f:
            analysed = {fl["name"]: fl for fl in json.load(f)["flows"]}

        self.srv = Server(self.tmp).start()
        keys = self.srv.project("lua", plan="scale")
        env = self.env(None, CODENSM_MODE="full", CODENSM_API_KEY=keys["ingest"],
                       CODENSM_ENDPOINT=f"http://127.0.0.1:{self.srv.port}/codensm/ingest",
                       CODENSM_SERVICE="lua-bench")
        p = run([self.exe, BENCH], env, timeout=300)
        self.assertEqual(p.returncode, 0, p)

        called = {n for (n,) in self.srv.sql("SELECT name FROM functions WHERE calls_total > 0")}
        known = {n for (n,) in self.srv.sql("SELECT name FROM functions")}
        stored = {n: (json.loads(f), s) for n, f, s in self.srv.sql("SELECT name, flow, service FROM flows")}
        self.assertGreater(len(called), 100)
        self.assertEqual(set(stored), set(analysed))  # every function of lua was matched by the analysis
        self.assertEqual(set(stored), known)
        for name, (fl, service) in stored.items():
            self.assertEqual(fl, analysed[name], name)
            self.assertEqual(service, "lua-bench")
        # each flow was sent once: the runtime's bodies, as the server kept them
        flow_bytes = sum(len(json.dumps(fl, separators=(",", ":"))) for fl, _ in stored.values())
        rows = self.srv.sql("SELECT COUNT(*) FROM batches")[0][0]

        # the largest flow drawn by the server, then in the dashboard
        big = max(stored, key=lambda n: stored[n][0]["nodes_count"])
        self.assertEqual(big, "lvm.luaV_execute")
        t0 = time.monotonic()
        status, headers, svg = self.srv.request(
            "GET", "/api/projects/lua/flow.svg?" + urllib.parse.urlencode({"fn": big}), None,
            {"Authorization": "Bearer " + keys["dashboard"]})
        draw_s = time.monotonic() - t0
        self.assertEqual((status, headers["content-type"]), (200, "image/svg+xml"))
        n = stored[big][0]["nodes_count"]
        self.assertEqual(len(re.findall(rb'<g id="node\d+" class="node ', svg)), n)
        self.assertEqual(len(re.findall(rb'<g id="edge\d+" class="edge"', svg)), len(stored[big][0]["edges"]))
        if find_chromium():
            self.render_in_chromium(keys, "lstrlib.str_find_aux")
        sys.stderr.write(
            f"\n# lua full mode: analysis {analysis_s:.1f} s ({len(analysed)} flows); {len(called)} functions called,"
            f" {len(stored)} flows stored, {flow_bytes} bytes of flows in {rows} bodies ="
            f" {flow_bytes / len(stored):.0f} bytes per function;"
            f" {big} ({n} nodes) drawn in {draw_s:.2f} s\n")

    def test_a_name_the_inventory_lists_twice_ships_one_flow(self):
        """lua's inventory lists luaV_concat and esccheck twice (GCC split them): still one flow each, 1,075 in all (table.sort's l_randomizePivot is compiled out, tests/real/build.sh)"""
        db = lua_database(os.path.join(self.tmp, "lua"))
        self.assertEqual(self.analyze("-p", db, self.exe).returncode, 0)
        rec = self.receiver()
        p = run([self.exe, "-e", "print(1 .. 2)"], self.env(rec, CODENSM_MODE="full"), timeout=120)
        self.assertEqual(p.returncode, 0, p)
        bodies = rec.committed()
        inventory = collections.Counter(f["name"] for b in bodies for f in b.get("inventory", []))
        self.assertEqual(sorted(n for n, k in inventory.items() if k > 1), ["llex.esccheck", "lvm.luaV_concat"])
        flows = collections.Counter(f["name"] for b in bodies for f in b.get("flows", []))
        self.assertEqual(max(flows.values()), 1)
        self.assertEqual(len(flows), 1075)

    def render_in_chromium(self, keys, name):
        url = keys["url"].replace(re.match(r"http://[^/]+", keys["url"]).group(0), f"http://127.0.0.1:{self.srv.port}")
        b = Browser(log_path=os.path.join(ARTIFACTS, "lua-chromium.log"))
        try:
            b.open()
            b.navigate(url)
            b.wait_for("document.body.dataset.ready === 'nsm'", what="the dashboard")
            b.eval("delete document.body.dataset.ready")
            b.click("#tab-flow")
            b.wait_for("document.body.dataset.ready === 'flow'", what="the flow view")
            b.eval("delete document.body.dataset.ready")
            b.eval(f"(() => {{ const i = document.querySelector('#view-flow input'); i.value = {json.dumps(name)};"
                   " i.dispatchEvent(new Event('change')); })()")
            b.wait_for("document.body.dataset.ready === 'flow' && !!document.querySelector('#flow-svg')",
                       timeout=30, what="the flow diagram")
            want = self.srv.sql("SELECT nodes_count FROM flows WHERE name = ?", name)[0][0]
            self.assertEqual(b.eval("document.querySelectorAll('#flow-svg g.node').length"), want)
            self.assertEqual(b.eval("document.querySelector('#flow-box .fn, .card-title .fn').textContent"), name)
            self.assertEqual(b.errors, [])
            os.makedirs(ARTIFACTS, exist_ok=True)
            b.screenshot(os.path.join(ARTIFACTS, "lua-flow.png"))
        finally:
            b.close()


if __name__ == "__main__":
    unittest.main()
