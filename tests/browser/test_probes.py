"""Probes in the dashboard, in headless chromium against the real server and
a real program built with the runtime (tests/browser/progs/probeloop.c).

The program runs for the whole class and calls its functions only when the
test tells it to (one line on its stdin), so every count is known: a probe
created from the page must show exactly the calls made after it was armed.
Screenshots land in tests/artifacts/browser-probes-*.png.
"""
import json
import os
import re
import select
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import Browser, CDPError  # noqa: E402
from test_dashboard import (ARTIFACTS, BUILD, ROOT, SERVER, ServerAndBrowser,  # noqa: E402
                            stop)

PROG_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progs", "probeloop.c")
WORK = "probeloop.loop_work"
FAIL = "probeloop.loop_charge"
RETRY = "probeloop.loop_retry"  # its new caller, from the first failure on
WORK_CALLS = 250   # loop_work calls made while the page's probe is armed
FAIL_CALLS = 7     # failing calls made once the automatic probe is armed


def build_program(out):
    """probeloop.c, instrumented, linked with build/lib's runtime (runtime/build.mk's RT_LINK)."""
    lib = os.path.join(BUILD, "lib")
    cmd = [os.environ.get("CC", "cc"), "-O1", "-g", "-pthread", "-std=gnu11", "-finstrument-functions",
           "-I" + os.path.join(ROOT, "runtime", "include"), PROG_SRC, "-o", out,
           "-L" + lib, "-Wl,-rpath," + lib, "-Wl,--push-state,--no-as-needed",
           "-Wl,-u,__cyg_profile_func_enter", "-Wl,-u,__cyg_profile_func_exit",
           "-lcodensm-rt", "-Wl,--pop-state", "-ldl"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.dirname(PROG_SRC))
    if r.returncode != 0:
        raise RuntimeError("building probeloop failed: " + " ".join(cmd) + "\n" + r.stderr)


class ProbesInBrowser(ServerAndBrowser):
    prog = None

    @classmethod
    def setUpClass(cls):
        cls.prepare("codensm-browser-probes-")
        cls.project = "loop"
        out = subprocess.run([SERVER, "project", "create", cls.project, "--db", cls.db,
                              "--listen", f"127.0.0.1:{cls.port}"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"project create failed: {out.stderr}")
        text = out.stdout + out.stderr
        cls.ingest_key = re.search(r"\bcnsm_[A-Za-z0-9_-]+", text).group(0)
        cls.dash_key = re.search(r"\bcnsmv_[A-Za-z0-9_-]+", text).group(0)
        m = re.search(r"manage key: (cnsmm_[A-Za-z0-9_-]+)", text)
        if not m:
            raise RuntimeError(f"project create printed no manage key: {text}")
        cls.manage_key = m.group(1)
        cls.start_server("browser-probes-server.log")
        exe = os.path.join(cls.tmp, "probeloop")
        build_program(exe)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODENSM_")}
        env.update(CODENSM_API_KEY=cls.ingest_key, CODENSM_ENDPOINT=f"{cls.base}/codensm/ingest",
                   CODENSM_INCLUDE="probeloop", CODENSM_FLUSH_INTERVAL="0.3", CODENSM_SERVICE="probeloop",
                   CODENSM_SPOOL_DIR=os.path.join(cls.tmp, "spool"), XDG_STATE_HOME=cls.tmp)
        cls.prog_err = open(os.path.join(ARTIFACTS, "browser-probes-program.log"), "wb")
        cls.prog = subprocess.Popen([exe], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=cls.prog_err, cwd=cls.tmp)
        cls.expect_line("ready")
        cls.wait_api(lambda: any(r["name"] == WORK for r in cls.get("functions", q=WORK)["rows"]),
                     f"{WORK} in the functions API")
        cls.browser = Browser(log_path=os.path.join(ARTIFACTS, "browser-probes-chromium.log"))
        cls.browser.open()

    @classmethod
    def tearDownClass(cls):
        if cls.prog:
            cls.prog.stdin.close()
            stop(cls.prog)
            cls.prog.stdout.close()
            cls.prog_err.close()
        super().tearDownClass()

    # ---- the program, the server ----

    @classmethod
    def expect_line(cls, want, timeout=20):
        fd = cls.prog.stdout
        r, _, _ = select.select([fd], [], [], timeout)
        line = fd.readline().decode().strip() if r else ""
        if line != want:
            raise AssertionError(f"probeloop said {line!r}, not {want!r} (exit status {cls.prog.poll()})")

    def tell(self, what, n):
        """Have the program make n calls now; returns when they are made."""
        self.prog.stdin.write(f"{what} {n}\n".encode())
        self.prog.stdin.flush()
        self.expect_line(f"done {n}")

    @classmethod
    def request(cls, method, path, key, body=None):
        req = urllib.request.Request(f"{cls.base}/api/projects/{cls.project}/{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    @classmethod
    def get(cls, path, **params):
        qs = urllib.parse.urlencode(params)
        status, body = cls.request("GET", path + ("?" + qs if qs else ""), cls.dash_key)
        if status != 200:
            raise AssertionError(f"GET {path}: {status} {body}")
        return body

    @classmethod
    def wait_api(cls, cond, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    # ---- the page ----

    def js(self, expr):
        return self.browser.eval(expr)

    def wait(self, expr, what, timeout=20):
        try:
            return self.browser.wait_for(expr, timeout=timeout, what=what)
        except CDPError as e:
            status = self.js("(document.querySelector('#status') || {}).textContent || ''")
            raise AssertionError(f"{e}; page status: {status!r}; errors: {self.browser.errors}") from None

    def open_page(self, key):
        """A fresh page on the project with this key, nothing kept in the tab."""
        b = self.browser
        if b.eval("location.origin") == self.base:
            b.eval("sessionStorage.clear()")
        b.navigate(f"{self.base}/#project={self.project}&key={key}")
        self.wait("document.body.dataset.ready === 'nsm'", "the North Star view")

    def show(self, view):
        self.js("delete document.body.dataset.ready")
        self.browser.click(f"#tab-{view}")
        self.wait(f"document.body.dataset.ready === {json.dumps(view)}", f"view {view}")

    def shot(self, name):
        self.browser.pump(0.3)
        self.browser.screenshot(os.path.join(ARTIFACTS, f"browser-probes-{name}.png"), full_page=True)

    def probe_button_of(self, name):
        """Click the employees row's probe button of `name`; the Probes view opens."""
        self.show("employees")
        self.js("delete document.body.dataset.ready")
        clicked = self.js(f"""(() => {{
            const r = [...document.querySelectorAll('#functions-table tbody tr')].find((x) => x.dataset.name === {json.dumps(name)});
            if (!r) return false;
            r.querySelector('button.btn-probe').click();
            return true; }})()""")
        self.assertTrue(clicked, f"no employees row with a probe button for {name}")
        self.wait("document.body.dataset.ready === 'probes'", "the Probes view")

    def process_status(self):
        return self.js("[...document.querySelectorAll('#probe-processes tbody td.c-status .ps')].map((e) => e.textContent)")

    # ---- the tests, in order ----

    def test_01_a_probe_made_on_the_page_fills_its_histogram_with_the_exact_calls(self):
        """a hist probe created from the employees table reaches EMITTING and its histogram holds exactly the calls made"""
        self.open_page(self.manage_key)
        self.assertNotIn("cnsmm_", self.js("location.href"))
        self.probe_button_of(WORK)
        self.wait("!document.querySelector('#probe-form-card').hidden", "the probe form")
        self.assertEqual(self.js("document.querySelector('#pf-target').value"), WORK)
        self.assertEqual(self.js("[document.querySelector('#pf-type').value, document.querySelector('#pf-value').value,"
                                 " document.querySelector('#pf-event').value, document.querySelector('#pf-lifespan').value]"),
                         ["hist", "duration", "return", "10"])
        self.js("document.querySelector('#pf-id').value = 'web-hist'")
        self.shot("form")
        self.browser.click("#probe-create")
        self.wait("document.querySelector('#probe-form-card').hidden && "
                  "document.querySelector('#probe-id') && document.querySelector('#probe-id').textContent === 'web-hist'",
                  "the new probe, selected")
        p = self.get("probes/web-hist")
        self.assertEqual((p["target"], p["instrument"]["type"], p["instrument"]["event"], p["lifespan"], p["auto"]),
                         (WORK, "hist", "return", 10, False))
        # The program learns the probe in its next ingest answer and reports it armed.
        self.wait("JSON.stringify([...document.querySelectorAll('#probe-processes tbody td.c-status .ps')]"
                  ".map((e) => e.textContent)) === '[\"INSTALLED\"]'", "the process's status INSTALLED")
        self.assertEqual(self.js("document.querySelector('#probe-count').textContent"), "0")
        self.tell("work", WORK_CALLS)
        self.wait(f"document.querySelector('#probe-count').textContent === {json.dumps(f'{WORK_CALLS:,}')} && "
                  "document.querySelector('#probe-processes td.c-status .ps').textContent === 'EMITTING'",
                  f"a count of {WORK_CALLS} and the status EMITTING")
        self.browser.pump(2.5)  # another poll or two: the count stays exact
        self.assertEqual(self.js("document.querySelector('#probe-count').textContent"), f"{WORK_CALLS:,}")
        chart = self.js("(() => { const c = Chart.getChart(document.querySelector('#probe-hist'));"
                        " return {sum: c.data.datasets[0].data.reduce((a, b) => a + b, 0),"
                        " bars: c.data.datasets[0].data.filter((n) => n > 0).length}; })()")
        api = self.get("probes/web-hist")
        r = api["results"]
        self.assertEqual((r["type"], r["count"], api["hits"]), ("hist", WORK_CALLS, WORK_CALLS))
        self.assertEqual(sum(c for _, c in r["hist"]), WORK_CALLS)
        self.assertEqual(chart, {"sum": WORK_CALLS, "bars": len([1 for _, c in r["hist"] if c > 0])})
        self.assertEqual(self.js("document.querySelector('#probe-hits').textContent"), f"{WORK_CALLS:,}")
        procs = self.js("[...document.querySelectorAll('#probe-processes tbody tr')].map((r) =>"
                        " [...r.children].map((td) => td.textContent))")
        self.assertEqual(len(procs), 1, procs)
        self.assertEqual((procs[0][0], procs[0][2], procs[0][3], procs[0][4]),
                         ("probeloop", str(self.prog.pid), "EMITTING", f"{WORK_CALLS:,}"))
        self.assertRegex(procs[0][6], r"^\d+ min \d+ s$")
        for k in ("p50", "p95", "p99"):
            self.assertNotEqual(self.js(f"document.querySelector('#probe-{k}').textContent"), "–", k)
        row = self.js("(() => { const r = document.querySelector('#probes-table tr[data-id=\"web-hist\"]');"
                      " return [...r.children].map((td) => td.textContent); })()")
        self.assertEqual(row[:4], ["web-hist", WORK, "hist", "active"])
        self.assertEqual((row[5], row[7]), (f"{WORK_CALLS:,}", "manual"))
        self.shot("hist")

    def test_02_the_servers_one_line_refusal_shows_next_to_the_form(self):
        """a probe the server refuses shows its one-line reason next to the form, and none is made"""
        self.show("probes")
        before = len(self.get("probes")["probes"])
        self.browser.click("#probe-new")
        self.wait("!document.querySelector('#probe-form-card').hidden", "the probe form")
        self.js(f"document.querySelector('#pf-target').value = {json.dumps(WORK)}")
        self.js("document.querySelector('#pf-id').value = 'web-hist'")  # in use
        self.browser.click("#probe-create")
        self.wait("document.querySelector('#probe-form-error').textContent !== ''", "the form's error line")
        shown = self.js("document.querySelector('#probe-form-error').textContent")
        status, answer = self.request("POST", "probes", self.manage_key,
                                      {"id": "web-hist", "target": WORK,
                                       "instrument": {"type": "hist", "value": "duration", "event": "return"},
                                       "lifespan": 10})
        self.assertEqual((status, shown), (409, answer["error"]))
        self.assertEqual(len(self.get("probes")["probes"]), before)
        self.browser.click("#probe-cancel")
        self.wait("document.querySelector('#probe-form-card').hidden", "the form closed")

    def test_03_the_call_graph_opens_the_form_on_its_function(self):
        """the call graph's Probe button prefills the form with its function (an incident's: test_05)"""
        self.show("employees")
        self.js("delete document.body.dataset.ready")
        self.js(f"[...document.querySelectorAll('#functions-table tbody tr')].find((r) => r.dataset.name === {json.dumps(WORK)}).click()")
        self.wait("document.body.dataset.ready === 'graph'", "the call graph")
        self.js("delete document.body.dataset.ready")
        self.browser.click("#graph-probe")
        self.wait("document.body.dataset.ready === 'probes' && !document.querySelector('#probe-form-card').hidden", "the form")
        self.assertEqual(self.js("document.querySelector('#pf-target').value"), WORK)
        self.browser.click("#probe-cancel")

    def test_04_renew_and_remove(self):
        """renew gives the probe its full lifespan again; remove takes it off the list and the API"""
        self.show("probes")
        self.js("document.querySelector('#probes-table tr[data-id=\"web-hist\"]').click()")
        self.wait("document.querySelector('#probe-id').textContent === 'web-hist'", "web-hist selected")
        old = self.get("probes/web-hist")["lastmodified"]
        time.sleep(1.1)  # lastmodified has whole seconds at least
        self.js("document.querySelector('#probes-table tr[data-id=\"web-hist\"] .probe-renew').click()")
        self.wait_api(lambda: self.get("probes/web-hist")["lastmodified"] != old, "a new lastmodified")
        self.assertGreater(self.get("probes/web-hist")["time_left_s"], 9 * 60)
        self.js("document.querySelector('#probes-table tr[data-id=\"web-hist\"] .probe-remove').click()")
        self.wait("document.querySelector('#probes-table tr[data-id=\"web-hist\"] .probe-remove').textContent === 'remove: sure?'",
                  "the remove button asking again")
        self.assertEqual(self.request("GET", "probes/web-hist", self.dash_key)[0], 200)
        self.js("document.querySelector('#probes-table tr[data-id=\"web-hist\"] .probe-remove').click()")
        self.wait("!document.querySelector('#probes-table tr[data-id=\"web-hist\"]')", "web-hist gone from the list")
        self.assertEqual(self.request("GET", "probes/web-hist", self.dash_key)[0], 404)
        self.assertEqual(self.js("document.querySelector('#probe-action-error').textContent"), "")

    def test_05_an_incident_shows_its_three_levels(self):
        """a new incident arms the automatic probe; its root cause shows the three levels with the calls it caught"""
        self.tell("fail", 1)
        inc = self.wait_api(lambda: [i for i in self.get("incidents", window="1h")["incidents"]
                                     if i["chain"] and i["chain"][-1]["name"] == FAIL], "the incident")[0]
        auto = f"auto-{inc['id']}"
        self.wait_api(lambda: [pr["status"] for pr in self.get(f"probes/{auto}")["processes"]] == ["INSTALLED"],
                      f"{auto} INSTALLED in the program")
        self.tell("fail", FAIL_CALLS)
        # level 2: the automatic probe counts the failing calls made once it
        # was armed; level 3: loop_retry, new, made all 1 + FAIL_CALLS calls
        rca = self.wait_api(lambda: (lambda r: r if r["levels"][1]["occurrences"] == FAIL_CALLS and
                                     r["levels"][2]["new_callers"] and
                                     r["levels"][2]["new_callers"][0]["calls"] == 1 + FAIL_CALLS else None)(
            self.get(f"incidents/{inc['id']}/rca")), f"{FAIL_CALLS} occurrences in level 2, {1 + FAIL_CALLS} new calls in level 3")
        self.assertEqual([c["name"] for c in rca["levels"][2]["new_callers"]], [RETRY])
        self.show("incidents")
        sel = f'#incidents .incident[data-id="{inc["id"]}"]'
        self.js("delete document.body.dataset.ready")
        self.browser.click(f"{sel} .btn-rca")
        self.wait(f"document.querySelectorAll('{sel} .rca-level').length === 3", "three levels")
        levels = self.js(f"[...document.querySelectorAll('{sel} .rca-level')].map((l) =>"
                         " [l.dataset.level, l.querySelector('.rca-title').textContent])")
        self.assertEqual(levels, [[str(l["level"]), str(l["level"]) + l["title"]] for l in rca["levels"]])
        chain = self.js(f"[...document.querySelectorAll('{sel} .rca-level[data-level=\"1\"] .chain .fn')].map((e) => e.textContent)")
        self.assertEqual(chain, [f["name"] for f in rca["levels"][0]["chain"]])
        self.assertEqual(chain[-1], FAIL)
        self.assertEqual(self.js(f"document.querySelector('{sel} .rca-level[data-level=\"2\"] .rca-occ').textContent"),
                         str(FAIL_CALLS))
        self.assertEqual(self.js(f"document.querySelector('{sel} .rca-level[data-level=\"2\"] .rca-probe').textContent"), auto)
        self.assertEqual(self.js(f"document.querySelector('{sel} .rca-level[data-level=\"2\"] .ps').textContent"),
                         rca["levels"][1]["status"])
        self.assertEqual(self.js(f"[...document.querySelectorAll('{sel} .rca-level[data-level=\"3\"] .rca-callers tbody tr')]"
                                 ".map((r) => [r.children[0].textContent, r.children[2].textContent])"),
                         [[RETRY, str(1 + FAIL_CALLS)]])
        self.shot("rca")
        # the setting: on by default, and the manage key may turn it off and on
        self.assertEqual(self.js("[document.querySelector('#auto-probes').checked, document.querySelector('#auto-probes').disabled]"),
                         [True, False])
        self.browser.click("#auto-probes")
        self.wait_api(lambda: self.get("settings")["auto_probes"] is False, "auto_probes off")
        self.browser.click("#auto-probes")
        self.wait_api(lambda: self.get("settings")["auto_probes"] is True, "auto_probes on")
        # the incident's probe button opens the form on the failing function
        self.js("delete document.body.dataset.ready")
        self.browser.click(f"{sel} .incident-head .btn-probe")
        self.wait("document.body.dataset.ready === 'probes' && !document.querySelector('#probe-form-card').hidden", "the form")
        self.assertEqual(self.js("document.querySelector('#pf-target').value"), FAIL)
        self.browser.click("#probe-cancel")
        self.show("incidents")
        self.wait(f"document.querySelectorAll('{sel} .rca-level').length === 3", "the three levels still open")
        # level 2's probe button opens that probe
        self.js("delete document.body.dataset.ready")
        self.browser.click(f"{sel} .rca-level[data-level=\"2\"] .rca-probe")
        self.wait(f"document.body.dataset.ready === 'probes' && document.querySelector('#probe-id').textContent === {json.dumps(auto)}",
                  "the automatic probe in the Probes view")
        self.assertEqual(self.js("document.querySelector('#probes-table tr.selected .c-origin').textContent"),
                         f"auto · incident #{inc['id']}")
        # its results: the chain of the failing calls, and the log probe's records, as the API's
        api = self.get(f"probes/{auto}")["results"]
        self.assertEqual([(s["chain"], s["count"]) for s in api["stacks"]], [(["probeloop.main", RETRY, FAIL], FAIL_CALLS)])
        self.wait(f"document.querySelector('#probe-stacks .chain-count').textContent === '×{FAIL_CALLS}'", "the chain's count")
        self.assertEqual(self.js("[...document.querySelectorAll('#probe-stacks .chain-row')].map((r) =>"
                                 " [...r.querySelectorAll('.fn')].map((e) => e.textContent))"), [["probeloop.main", RETRY, FAIL]])
        self.shot("stack")
        self.js(f"document.querySelector('#probes-table tr[data-id=\"{auto}-log\"]').click()")
        self.wait(f"document.querySelector('#probe-id').textContent === '{auto}-log' && !!document.querySelector('#probe-log')",
                  "the log probe's records")
        log = self.get(f"probes/{auto}-log")["results"]["log"]
        self.assertEqual(len(log), FAIL_CALLS)
        rows = self.js("[...document.querySelectorAll('#probe-log tbody tr')].map((r) => [...r.children].map((td) => td.textContent))")
        self.assertEqual(len(rows), FAIL_CALLS)
        self.assertEqual({(r[1], r[3], r[5], r[7], r[8]) for r in rows},
                         {("probeloop", str(self.prog.pid), RETRY, "error", "end")})
        self.shot("log")

    def test_06_a_dashboard_key_reads_probes_and_asks_for_the_manage_key(self):
        """with the read-only key: probes are listed, nothing to create, renew or remove, and a paste prompt"""
        self.open_page(self.dash_key)
        self.show("probes")
        self.wait("document.querySelectorAll('#probes-table tbody tr').length > 0", "the probes list")
        self.assertEqual(self.js("document.querySelectorAll('#probes-table tbody tr').length"), len(self.get("probes")["probes"]))
        self.assertEqual(self.js("[document.querySelector('#probe-new').hidden, document.querySelectorAll('.probe-renew, .probe-remove').length,"
                                 " !!document.querySelector('#manage-paste')]"), [True, 0, True])
        self.probe_button_of(WORK)
        self.wait("!!document.querySelector('#manage-pending')", "the note asking for the manage key")
        self.assertEqual(self.js("document.querySelector('#manage-pending .fn').textContent"), WORK)
        self.assertTrue(self.js("document.querySelector('#probe-form-card').hidden"))
        self.shot("read-only")
        # the server refuses a write with this key, in one line
        status, answer = self.request("POST", "probes", self.dash_key, {"target": WORK, "instrument": {"type": "hist"}})
        self.assertEqual((status, answer["error"]),
                         (403, "this key is read-only: creating probes needs the project's manage key (cnsmm_...)"))
        # a dashboard key pasted is refused on the page; the manage key opens the form on the function
        self.js(f"document.querySelector('#manage-key').value = {json.dumps(self.dash_key)}")
        self.browser.click("#manage-paste button[type=submit]")
        self.wait("document.querySelector('#manage-error').textContent.startsWith('a manage key starts with cnsmm_')", "the refusal")
        # so is another project's manage key (the server answers 404 for it)
        out = subprocess.run([SERVER, "project", "create", "other", "--db", self.db], capture_output=True, text=True, timeout=30)
        other = re.search(r"manage key: (cnsmm_[A-Za-z0-9_-]+)", out.stdout + out.stderr).group(1)
        self.js(f"document.querySelector('#manage-key').value = {json.dumps(other)}")
        self.browser.click("#manage-paste button[type=submit]")
        self.wait("document.querySelector('#manage-error').textContent === 'that manage key is not accepted for project \"loop\"'",
                  "the refusal of another project's key")
        self.assertIsNone(self.js("sessionStorage.getItem('codensm.manage')"))
        self.js(f"document.querySelector('#manage-key').value = {json.dumps(self.manage_key)}")
        self.browser.click("#manage-paste button[type=submit]")
        self.wait("!document.querySelector('#probe-form-card').hidden && !document.querySelector('#probe-new').hidden", "the form")
        self.assertEqual(self.js("document.querySelector('#pf-target').value"), WORK)
        self.assertEqual(json.loads(self.js("sessionStorage.getItem('codensm.manage')")),
                         {"project": self.project, "key": self.manage_key})
        self.assertEqual(self.js("sessionStorage.getItem('codensm.key')"), self.dash_key)
        self.browser.click("#probe-cancel")
        self.browser.click("#manage-forget")
        self.wait("!!document.querySelector('#manage-paste') && document.querySelector('#probe-new').hidden", "read-only again")
        self.assertIsNone(self.js("sessionStorage.getItem('codensm.manage')"))
        self.show("incidents")
        self.assertTrue(self.js("document.querySelector('#auto-probes').disabled"))

    def test_07_no_script_error(self):
        """the probe views ran without a script error or a CSP violation"""
        # the refusals the tests asked for (test_02's 409, test_06's check of
        # another project's key) are the only failed loads
        errors = [e for e in self.browser.errors if not re.search(
            r"status of (409 \(Conflict\) \S+/probes|404 \(Not Found\) \S+/settings)$", e)]
        self.assertEqual(errors, [])
        self.assertEqual(self.browser.dialogs, [])


if __name__ == "__main__":
    unittest.main()
