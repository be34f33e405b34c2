"""The dashboard in a real browser: headless chromium against the real server.

setUpClass starts build/bin/codensm-server on a free loopback port with a
fresh SQLite file, creates a project, posts known payloads (one function with
an HTML-looking name), and opens the dashboard address the server printed.
Each test then reads the page as a person would and compares it with the JSON
API.  Screenshots land in tests/artifacts/browser-*.png.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, CDPError, find_chromium  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("CODENSM_BUILD", "build"))
SERVER = os.path.join(BUILD, "bin", "codensm-server")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts")
SHOP = os.path.join(BUILD, "samples", "shop")  # the instrumented sample, when built
SHOP_ORDERS = 200

EVIL = "<img src=x onerror=alert(1)>"
KNOWN = "checkout.cart.total"
CALLER = "checkout.api.handle"
FAILING = "payments.card.charge"
NEVER = "checkout.legacy.export_pdf"


def payloads(now):
    """Two requests: deltas add up, so KNOWN ends with exactly 1,240 calls."""
    first = {
        "functions": [
            {"name": CALLER, "department": "checkout", "value_weight": 2, "calls": 300, "errors": 0,
             "total_ms": 9000, "self_ms": 1500, "max_ms": 80, "file": "checkout/api.c", "line": 10,
             "hist": [[40, 200], [42, 100]]},
            {"name": KNOWN, "department": "checkout", "value_weight": 9, "calls": 1000, "errors": 2,
             "total_ms": 38000, "self_ms": 30000, "max_ms": 120, "file": "checkout/cart.c", "line": 42,
             "hist": [[38, 600], [41, 400]], "estimated_calls": 900},
            {"name": FAILING, "department": "payments", "value_weight": 5, "calls": 200, "errors": 60,
             "total_ms": 24000, "self_ms": 24000, "max_ms": 900, "file": "payments/card.c", "line": 31,
             "hist": [[44, 150], [47, 50]]},
            {"name": EVIL, "department": "<b>growth</b>", "value_weight": 1, "calls": 7, "errors": 1,
             "total_ms": 70, "file": "<script>alert(2)</script>.c", "line": 1},
            {"name": "search.index.lookup", "department": "search", "value_weight": 0.5, "calls": 4,
             "errors": 0, "total_ms": 4, "file": "search/index.c", "line": 7},
        ],
        "edges": [
            {"caller": CALLER, "callee": KNOWN, "calls": 300},
            {"caller": KNOWN, "callee": FAILING, "calls": 200},
            {"caller": CALLER, "callee": EVIL, "calls": 7},
        ],
        "incidents": [
            {"kind": "error", "signal": 0, "count": 60, "first_seen": now - 600, "last_seen": now - 5,
             "chain": [{"name": CALLER, "file": "checkout/api.c", "line": 10},
                       {"name": KNOWN, "file": "checkout/cart.c", "line": 42},
                       {"name": FAILING, "file": "payments/card.c", "line": 31}]},
            {"kind": "signal", "signal": 11, "count": 1, "first_seen": now - 60, "last_seen": now - 60,
             "chain": [{"name": CALLER, "file": "checkout/api.c", "line": 10},
                       {"name": EVIL, "file": "<script>alert(2)</script>.c", "line": 1}]},
        ],
        "inventory": [
            {"name": NEVER, "department": "checkout", "value_weight": 1, "file": "checkout/legacy.c", "line": 5},
            {"name": KNOWN, "department": "checkout", "value_weight": 9, "file": "checkout/cart.c", "line": 42},
        ],
        # CODENSM_MODE=full: KNOWN has the seed's example shape; FAILING a
        # branchy one with an error exit and no tests
        "flows": [
            {"name": KNOWN, "nodes": [{"type": t} for t in ("start", "loop", "decision", "block", "end")],
             "edges": [[0, 1], [1, 2], [2, 3], [3, 4]], "decisions": 1, "loops": 1, "returns": 1,
             "nodes_count": 5, "lines": 6, "calls_out": [FAILING], "has_tests": True},
            {"name": FAILING, "nodes": [{"type": t} for t in ("start", "decision", "error", "block", "end")],
             "edges": [[0, 1], [1, 2], [1, 3], [3, 4]], "decisions": 2, "loops": 0, "returns": 1,
             "nodes_count": 5, "lines": 12, "calls_out": [], "has_tests": False},
        ],
        "_meta": {"sdk": "codensm-browser-test", "version": "0.1.0", "batch_id": "browser-1",
                  "interval": [now - 15, now], "dropped": 0, "hist": "log2x2-ns"},
    }
    second = {
        "functions": [
            {"name": KNOWN, "department": "checkout", "value_weight": 9, "calls": 240, "errors": 1,
             "total_ms": 9000, "self_ms": 7000, "max_ms": 60, "hist": [[38, 240]], "estimated_calls": 200},
        ],
        "_meta": {"sdk": "codensm-browser-test", "version": "0.1.0", "batch_id": "browser-2",
                  "interval": [now - 5, now], "hist": "log2x2-ns"},
    }
    return [first, second]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fmt_int(n):
    return f"{n:,}"


def fmt_num(x):
    """The page's en-US format with at most two decimals (dom.js fmtNum)."""
    s = f"{round(x, 2):,.2f}".rstrip("0").rstrip(".")
    return s if s not in ("-0", "") else "0"


def stop(proc, timeout=10):
    """Wait `timeout` s for `proc` to end (after a terminate or closed
    stdin), then kill it."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ServerAndBrowser(unittest.TestCase):
    """A codensm-server on a fresh SQLite file and a port of its own, and a
    chromium: what each browser test class starts once (skipped, visibly,
    where the server is not built or chromium is not installed)."""
    server = None
    browser = None

    @classmethod
    def prepare(cls, prefix):
        """Check what the tests need; a scratch folder, its database path,
        a free port and the server's base address."""
        if not os.access(SERVER, os.X_OK):
            raise unittest.SkipTest(f"{SERVER} not built")
        if not find_chromium():
            raise unittest.SkipTest("chromium not installed")
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.tmp = tempfile.mkdtemp(prefix=prefix)
        cls.db = os.path.join(cls.tmp, "codensm.db")
        cls.port = free_port()
        cls.base = f"http://127.0.0.1:{cls.port}"

    @classmethod
    def start_server(cls, log_name):
        """Start the server (its log in ARTIFACTS/log_name); return once it
        listens, or raise if it exits or does not listen within 15 s."""
        cls.server_log = open(os.path.join(ARTIFACTS, log_name), "wb")
        cls.server = subprocess.Popen(
            [SERVER, "--listen", f"127.0.0.1:{cls.port}", "--db", cls.db],
            stdout=cls.server_log, stderr=subprocess.STDOUT, cwd=cls.tmp)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if cls.server.poll() is not None:
                raise RuntimeError(f"codensm-server exited {cls.server.returncode} (see {log_name})")
            try:
                with socket.create_connection(("127.0.0.1", cls.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("codensm-server did not listen within 15 s")

    @classmethod
    def tearDownClass(cls):
        if cls.browser:
            cls.browser.close()
        if cls.server:
            cls.server.terminate()
            stop(cls.server)
            cls.server_log.close()
        shutil.rmtree(getattr(cls, "tmp", ""), ignore_errors=True)


class DashboardInBrowser(ServerAndBrowser):

    @classmethod
    def setUpClass(cls):
        cls.prepare("codensm-browser-")
        cls.start_server("browser-server.log")
        cls.project = "shop"
        cls.ingest_key, cls.dash_key, cls.url = cls.create_project(cls.project)
        cls.now = time.time()
        for body in payloads(cls.now):
            status, answer = cls.post("/codensm/ingest", body, cls.ingest_key)
            if status != 200:
                raise RuntimeError(f"ingest answered {status}: {answer}")
        cls.live = None
        if os.access(SHOP, os.X_OK):
            cls.live = cls.run_sample()
        cls.browser = Browser(log_path=os.path.join(ARTIFACTS, "browser-chromium.log"))
        cls.browser.open(grant_clipboard_origin=cls.base)

    @classmethod
    def create_project(cls, name):
        """(ingest key, dashboard key, the dashboard address printed)."""
        out = subprocess.run([SERVER, "project", "create", name, "--db", cls.db,
                              "--listen", f"127.0.0.1:{cls.port}"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"project create failed: {out.stderr}")
        text = out.stdout + out.stderr
        return (re.search(r"\bcnsm_[A-Za-z0-9_-]+", text).group(0),
                re.search(r"\bcnsmv_[A-Za-z0-9_-]+", text).group(0),
                re.search(r"dashboard: (http://\S+)", text).group(1))

    @classmethod
    def run_sample(cls):
        """Run the instrumented shop sample against the server, in its own project."""
        ingest, dash, url = cls.create_project("live")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODENSM_")}
        env.update(CODENSM_API_KEY=ingest, CODENSM_ENDPOINT=f"{cls.base}/codensm/ingest",
                   CODENSM_INCLUDE="checkout,payments,inventory,legacy",
                   CODENSM_SPOOL_DIR=os.path.join(cls.tmp, "spool"), XDG_STATE_HOME=cls.tmp)
        r = subprocess.run([SHOP, str(SHOP_ORDERS)], env=env, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"shop sample exited {r.returncode}: {r.stderr[-2000:]}")
        return {"dash_key": dash, "url": url}

    # ---- helpers ----

    @classmethod
    def post(cls, path, body, key):
        req = urllib.request.Request(cls.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def api(self, view, project=None, key=None, **params):
        qs = urllib.parse.urlencode(params)
        req = urllib.request.Request(f"{self.base}/api/projects/{project or self.project}/{view}?{qs}",
                                     headers={"Authorization": f"Bearer {key or self.dash_key}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def wait(self, expr, what):
        """wait_for, and on a timeout say what the page's status line and console said."""
        try:
            return self.browser.wait_for(expr, what=what)
        except CDPError as e:
            status = self.browser.eval("(document.querySelector('#status') || {}).textContent || ''")
            rc = self.server.poll()
            died = f"; codensm-server DIED with status {rc}" if rc is not None else ""
            raise AssertionError(f"{e}; page status: {status!r}; errors: {self.browser.errors}{died}") from None

    def js(self, expr):
        return self.browser.eval(expr)

    def show(self, view, shot=True):
        """Click a tab and wait until that view has rendered its data."""
        b = self.browser
        b.eval("delete document.body.dataset.ready")
        b.click(f"#tab-{view}")
        self.wait(f"document.body.dataset.ready === {json.dumps(view)}", f"view {view}")
        b.pump(0.3)
        if shot:
            b.screenshot(os.path.join(ARTIFACTS, f"browser-{view}.png"))

    def open_dashboard(self):
        b = self.browser
        if b.eval("location.origin") != self.base or not b.eval("!!document.body && !!document.body.dataset.ready"):
            b.navigate(self.url)
            self.wait("document.body.dataset.ready === 'nsm'", "the North Star view")

    # ---- the tests, in order ----

    def test_01_nsm_figure_equals_the_api(self):
        """the North-Star figure on the page is the API's number, and the key leaves the URL"""
        self.open_dashboard()
        self.browser.pump(0.3)
        self.browser.screenshot(os.path.join(ARTIFACTS, "browser-nsm.png"))
        nsm = self.api("summary", window="24h")["nsm"]
        expected = 9 * (1240 - 3) + 2 * 300 + 5 * (200 - 60) + 1 * (7 - 1) + 0.5 * 4
        self.assertAlmostEqual(nsm, expected, places=6)
        self.assertEqual(self.js("document.querySelector('#nsm-value').textContent"), fmt_num(nsm))
        self.assertAlmostEqual(float(self.js("document.querySelector('#nsm-value').dataset.value")), nsm, places=6)
        self.assertNotIn("cnsmv_", self.js("location.href"))
        self.assertEqual(self.js("sessionStorage.getItem('codensm.key')"), self.dash_key)

    def test_02_known_function_row_shows_its_exact_calls(self):
        """the employees table has a row for the known function with its exact call count"""
        self.open_dashboard()
        self.show("employees")
        row = self.js(f"""(() => {{
            const tr = [...document.querySelectorAll('#functions-table tbody tr')]
                .find((r) => r.querySelector('td.fn').textContent === {json.dumps(KNOWN)});
            const cell = (name, col) => {{
                const r = [...document.querySelectorAll('#functions-table tbody tr')]
                    .find((x) => x.querySelector('td.fn').textContent === name);
                const td = r.querySelector('td.' + col), e = td.querySelector('.estimated');
                return {{text: td.textContent, title: e ? e.title : null}};
            }};
            return tr && {{calls: tr.querySelector('td.c-calls').textContent,
                          file: tr.querySelector('td.file').textContent,
                          dept: tr.querySelector('td.dept').textContent,
                          p95: cell({json.dumps(KNOWN)}, 'c-p95'), self: cell({json.dumps(KNOWN)}, 'c-self'),
                          caller_p95: cell({json.dumps(CALLER)}, 'c-p95')}};
        }})()""")
        self.assertIsNotNone(row, "no row for " + KNOWN)
        self.assertEqual(row["calls"], "1,240")
        # 1,100 of its calls were not clocked (sampled timing): its times say so
        for c in (row["p95"], row["self"]):
            self.assertTrue(c["text"].startswith("≈ "), c)
            self.assertIn("1,100 of 1,240 calls were not clocked", c["title"])
        self.assertEqual((row["self"]["text"], row["caller_p95"]["title"]), ("≈ 37.00 s", None))
        self.assertFalse(row["caller_p95"]["text"].startswith("≈"), row["caller_p95"])
        self.assertEqual(row["file"], "checkout/cart.c:42")
        self.assertEqual(row["dept"], "checkout")
        api_row = [r for r in self.api("functions", q=KNOWN)["rows"] if r["name"] == KNOWN][0]
        self.assertEqual(api_row["calls"], 1240)

    def test_03_search_filters_on_the_server(self):
        """typing in the search box narrows the table to the matching functions"""
        self.open_dashboard()
        self.show("employees", shot=False)
        b = self.browser
        b.eval("(() => { const i = document.querySelector('#emp-search'); i.value = 'cart.total';"
               " i.dispatchEvent(new Event('input')); delete document.body.dataset.ready; })()")
        self.wait("document.body.dataset.ready === 'employees' && "
                   "document.querySelectorAll('#functions-table tbody tr').length === 1", "one row")
        self.assertEqual(self.js("document.querySelector('#functions-table tbody td.fn').textContent"), KNOWN)
        self.assertIn("of 1", self.js("document.querySelector('#emp-count').textContent"))
        b.eval("(() => { const i = document.querySelector('#emp-search'); i.value = '';"
               " i.dispatchEvent(new Event('input')); delete document.body.dataset.ready; })()")
        self.wait("document.body.dataset.ready === 'employees' && "
                   "document.querySelectorAll('#functions-table tbody tr').length > 1", "all rows")

    def test_04_heatmap_has_the_known_functions_cell(self):
        """the debt heatmap is drawn and the failing function's cell counts and lists it"""
        self.open_dashboard()
        self.show("debt")
        debt = self.api("debt", window="24h")
        point = [p for p in debt["points"] if p["name"] == FAILING][0]
        x, y = min(9, int(point["share"] * 10)), min(9, int(point["error_rate"] * 10))
        cell = [c for c in debt["cells"] if c["x"] == x and c["y"] == y]
        self.assertTrue(cell, f"the API has no cell {x},{y}")
        self.assertEqual(self.js("document.querySelectorAll('#heatmap .hm-cell').length"), 100)
        sel = f'#heatmap .hm-cell[data-x="{x}"][data-y="{y}"]'
        self.assertEqual(self.js(f"document.querySelector('{sel}').textContent"), str(cell[0]["count"]))
        b = self.browser
        box = b.eval(f"(() => {{ const r = document.querySelector('{sel}').getBoundingClientRect();"
                     " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        b.mouse_move(*box)
        self.wait("!document.querySelector('.hm-tip').hidden", "the heatmap tooltip")
        names = b.eval("[...document.querySelectorAll('.hm-tip .hm-list .fn')].map((e) => e.textContent)")
        self.assertIn(FAILING, names)
        b.screenshot(os.path.join(ARTIFACTS, "browser-debt-hover.png"))
        b.mouse_move(2, 2)

    def test_05_incident_chain_is_listed(self):
        """the incident chain is listed caller first, with file:line, count and times"""
        self.open_dashboard()
        self.show("incidents")
        chains = self.js("""[...document.querySelectorAll('#incidents .incident')].map((a) => ({
            names: [...a.querySelectorAll('.chain li .fn')].map((e) => e.textContent),
            files: [...a.querySelectorAll('.chain li .file')].map((e) => e.textContent),
            count: a.querySelector('.incident-count').textContent }))""")
        mine = [c for c in chains if c["names"] == [CALLER, KNOWN, FAILING]]
        self.assertEqual(len(mine), 1, chains)
        self.assertEqual(mine[0]["files"], ["checkout/api.c:10", "checkout/cart.c:42", "payments/card.c:31"])
        self.assertEqual(mine[0]["count"], "×60")

    def test_06_untrusted_names_render_as_text(self):
        """a function named like an <img> tag shows as literal text everywhere and never runs"""
        self.open_dashboard()
        b = self.browser
        for view in ("employees", "office", "debt", "incidents", "underuse", "departments"):
            self.show(view, shot=False)
            self.assertEqual(self.js("document.querySelectorAll('img').length"), 0, view)
            self.assertEqual(self.js("document.querySelectorAll('script:not([src])').length"), 0, view)
        self.show("employees", shot=False)
        shown = self.js(f"""[...document.querySelectorAll('#functions-table td.fn')]
            .map((e) => e.textContent).filter((t) => t === {json.dumps(EVIL)}).length""")
        self.assertEqual(shown, 1)
        self.assertIn("<b>growth</b>", self.js("[...document.querySelectorAll('#functions-table td.dept')].map((e) => e.textContent)"))
        self.show("office", shot=False)
        self.assertTrue(self.js(f"[...document.querySelectorAll('.desk')].some((d) => d.dataset.name === {json.dumps(EVIL)})"))
        self.show("incidents", shot=False)
        self.assertIn(EVIL, self.js("[...document.querySelectorAll('.chain .fn')].map((e) => e.textContent)"))
        b.pump(0.5)
        self.assertEqual(b.dialogs, [], "a dialog opened")
        self.assertEqual(self.js("document.querySelectorAll('img[src=x], img[src=\"x\"]').length"), 0)

    def test_07_copy_button_puts_the_prompt_on_the_clipboard(self):
        """the AI fix prompt is the API's text and Copy puts it on the clipboard"""
        self.open_dashboard()
        self.show("employees", shot=False)
        b = self.browser
        b.eval("delete document.body.dataset.ready")
        b.eval(f"""[...document.querySelectorAll('#functions-table tbody tr')]
            .find((r) => r.dataset.name === {json.dumps(FAILING)}).querySelector('td.actions button').click()""")
        self.wait("document.body.dataset.ready === 'prompt'", "the prompt view")
        expected = self.api("prompt", fn=FAILING, window="24h")["prompt"]
        self.assertIn(FAILING, expected)
        self.wait(f"document.querySelector('#prompt-text').value === {json.dumps(expected)}", "the prompt text")
        b.click("#copy-prompt")
        self.wait("document.querySelector('#copy-status').textContent !== ''", "the copy status")
        self.assertEqual(self.js("document.querySelector('#copy-status').textContent"), "Copied to the clipboard.")
        self.assertEqual(b.eval("navigator.clipboard.readText()", gesture=True), expected)
        b.screenshot(os.path.join(ARTIFACTS, "browser-prompt.png"))

    def test_08_every_view_renders_without_errors(self):
        """every view renders from the API with no script error and no CSP violation"""
        self.open_dashboard()
        for view in ("nsm", "departments", "office", "underuse", "probes", "graph", "code", "help"):
            self.show(view)
        self.assertEqual(self.js("document.querySelector('#status').hidden"), True,
                         self.js("document.querySelector('#status').textContent"))
        self.assertEqual(self.browser.errors, [])
        with urllib.request.urlopen(self.base + "/", timeout=10) as r:
            self.assertIn("default-src 'self'", r.headers.get("Content-Security-Policy", ""))

    def test_09_underuse_and_graph_show_the_api_numbers(self):
        """underuse lists the never-called function; the graph shows the known edge count"""
        self.open_dashboard()
        self.show("underuse", shot=False)
        never = self.js("[...document.querySelectorAll('#never-table td.fn')].map((e) => e.textContent)")
        self.assertIn(NEVER, never)
        b = self.browser
        self.show("employees", shot=False)
        b.eval("delete document.body.dataset.ready")
        b.eval(f"""[...document.querySelectorAll('#functions-table tbody tr')]
            .find((r) => r.dataset.name === {json.dumps(KNOWN)}).click()""")
        self.wait("document.body.dataset.ready === 'graph'", "the graph view")
        edges = self.js("""[...document.querySelectorAll('#graph-edges tbody tr')].map((r) =>
            [...r.querySelectorAll('td')].map((td) => td.textContent))""")
        self.assertIn([CALLER, "→", KNOWN, "300"], edges)
        self.assertIn([KNOWN, "→", FAILING, "200"], edges)
        self.assertGreaterEqual(self.js("document.querySelectorAll('#graph svg .node').length"), 3)
        b.screenshot(os.path.join(ARTIFACTS, "browser-graph.png"))

    def test_09b_the_flow_diagram_renders_for_an_ingested_flow(self):
        """the employees row's flow button shows the Graphviz diagram: exactly the flow's 5 nodes and 4 edges"""
        self.open_dashboard()
        self.show("employees", shot=False)
        b = self.browser
        cols = self.js(f"""(() => {{
            const r = [...document.querySelectorAll('#functions-table tbody tr')]
                .find((x) => x.dataset.name === {json.dumps(KNOWN)});
            return ['c-dec', 'c-loops', 'c-ret', 'c-nodes', 'c-lines', 'c-tests']
                .map((c) => r.querySelector('td.' + c).textContent); }})()""")
        self.assertEqual(cols, ["1", "1", "1", "5", "6", "yes"])
        b.eval("delete document.body.dataset.ready")
        b.eval(f"""[...document.querySelectorAll('#functions-table tbody tr')]
            .find((r) => r.dataset.name === {json.dumps(KNOWN)}).querySelector('button.btn-flow').click()""")
        self.wait("document.body.dataset.ready === 'flow' && !!document.querySelector('#flow-svg')", "the flow view")
        nodes = self.js("[...document.querySelectorAll('#flow-svg g.node')].map((g) =>"
                        " [g.querySelector('title').textContent, g.getAttribute('class')])")
        self.assertEqual(nodes, [["n0", "node start"], ["n1", "node loop"], ["n2", "node decision"],
                                 ["n3", "node block"], ["n4", "node end"]])
        edges = self.js("[...document.querySelectorAll('#flow-svg g.edge title')].map((t) => t.textContent)")
        self.assertEqual(sorted(edges), ["n0->n1", "n1->n2", "n2->n3", "n3->n4"])
        # laid out by dot: every node has a box of its own, top to bottom
        tops = self.js("[...document.querySelectorAll('#flow-svg g.node')].map((g) => g.getBoundingClientRect().top)")
        self.assertEqual(tops, sorted(tops))
        self.assertEqual(len(set(tops)), 5)
        self.assertEqual(self.js("document.querySelector('#flow-tests').textContent"), "has tests")
        self.assertEqual(self.js("document.querySelector('#flow-kind').textContent"), "unique IP")
        self.assertEqual(self.browser.errors, [])
        b.screenshot(os.path.join(ARTIFACTS, "browser-flow.png"))

    def test_09c_the_code_view_shows_the_split_and_the_untested_load(self):
        """the code view: KNOWN is tested unique IP, FAILING untested and load-bearing; one dot each"""
        self.open_dashboard()
        self.show("code")
        c = self.api("code", window="24h")
        self.assertEqual((c["analysed"], c["split"]["unique_ip"]["functions"], c["tests"]["with_tests"]), (2, 2, 1))
        rows = self.js("[...document.querySelectorAll('#ip-split tbody tr')].map((r) =>"
                       " [...r.children].map((td) => td.textContent))")
        self.assertEqual(rows[0][:2], ["unique IP", "2"])
        self.assertEqual(rows[1][:2], ["boilerplate", "0"])
        self.assertEqual(self.js("[...document.querySelectorAll('#untested-table td.fn')].map((e) => e.textContent)"),
                         [FAILING])
        self.assertEqual(self.js("document.querySelectorAll('#cx-scatter circle.dot').length"), 2)

    def test_10_a_wrong_key_asks_for_the_key(self):
        """a wrong key shows the login form; the right one opens the dashboard"""
        b = self.browser
        b.navigate(f"{self.base}/#project={self.project}&key=cnsmv_wrong")
        self.wait("!document.querySelector('#login').hidden", "the login form")
        self.assertTrue(self.js("document.querySelector('#app').hidden"))
        b.screenshot(os.path.join(ARTIFACTS, "browser-login.png"))
        b.eval(f"document.querySelector('#login-key').value = {json.dumps(self.dash_key)}")
        b.click("#login button[type=submit]")
        self.wait("document.body.dataset.ready === 'nsm' && !document.querySelector('#app').hidden",
                   what="the dashboard after login")
        self.assertNotIn("cnsmv_", self.js("location.href"))

    def test_10b_the_window_selector_refetches(self):
        """choosing another window shows that window's NSM and says which window it is"""
        self.open_dashboard()
        b = self.browser
        self.show("nsm", shot=False)
        b.eval("delete document.body.dataset.ready")
        b.click("#win-7d")
        self.wait("document.body.dataset.ready === 'nsm' && "
                  "document.querySelector('.nsm-caption').textContent.endsWith('last 7 days')", "the 7d window")
        nsm = self.api("summary", window="7d")["nsm"]
        self.assertEqual(self.js("document.querySelector('#nsm-value').textContent"), fmt_num(nsm))
        self.assertTrue(self.js("document.querySelector('#win-7d').classList.contains('active')"))
        b.click("#win-24h")
        self.wait("document.querySelector('.nsm-caption').textContent.endsWith('last 24 hours')", "the 24h window")

    def test_11_a_sample_run_shows_its_exact_counts(self):
        """after the instrumented shop sample ran, the page shows the calls the API counted"""
        if not self.live:
            self.skipTest(f"{SHOP} not built")
        b = self.browser
        b.navigate(self.live["url"])
        self.wait("document.body.dataset.ready === 'nsm'", "the live project's North Star")
        key = self.live["dash_key"]
        nsm = self.api("summary", project="live", key=key, window="24h")["nsm"]
        self.assertGreater(nsm, 0)
        self.assertEqual(self.js("document.querySelector('#nsm-value').textContent"), fmt_num(nsm))
        self.show("employees", shot=False)
        name = "payments.card.card_authorize"  # SHOP_ORDERS calls, every 50th fails
        row = self.js(f"""(() => {{
            const tr = [...document.querySelectorAll('#functions-table tbody tr')]
                .find((r) => r.dataset.name === {json.dumps(name)});
            return tr && tr.querySelector('td.c-calls').textContent; }})()""")
        self.assertEqual(row, fmt_int(SHOP_ORDERS))
        api_row = [r for r in self.api("functions", project="live", key=key, q=name)["rows"] if r["name"] == name]
        self.assertEqual(api_row[0]["calls"], SHOP_ORDERS)
        self.assertEqual(api_row[0]["errors"], SHOP_ORDERS // 50)
        b.screenshot(os.path.join(ARTIFACTS, "browser-live-employees.png"))
        self.show("incidents", shot=False)
        failing = self.js("[...document.querySelectorAll('#incidents .chain li:last-child .fn')].map((e) => e.textContent)")
        self.assertIn(name, failing)
        b.screenshot(os.path.join(ARTIFACTS, "browser-live-incidents.png"))


if __name__ == "__main__":
    unittest.main()
