"""GET /api/projects/NAME/metrics: the project's lifetime counters in the
Prometheus text format, behind the dashboard key, accepted by promtool
(Debian's prometheus package), with exact values and a cap on series."""
import re
import shutil
import subprocess
import unittest

from serverlib import ServerTest, fn

PROMTOOL = shutil.which("promtool")
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse(text):
    """{(metric, ((label, value), ...)): float} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = tuple((k, unescape(v)) for k, v in LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def fnl(name, dept):
    return (("function", name), ("department", dept))


def dl(dept):
    return (("department", dept),)


class Metrics(ServerTest):
    @classmethod
    def prepare(cls):
        cls.p = cls.srv.project("prom")
        cls.q = cls.srv.project("other")
        cls.cap = cls.srv.project("capped", "team")

    def metrics(self, key, project="prom"):
        h = {"Authorization": f"Bearer {key}"} if key is not None else {}
        status, headers, data = self.srv.request("GET", f"/api/projects/{project}/metrics", None, h)
        return status, headers, data.decode()

    def promtool(self, text):
        if not PROMTOOL:
            self.fail("promtool is not installed (Debian package prometheus, .ci/deps)")
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""), text[:2000])

    def test_a_known_ingest_gives_exact_counters(self):
        """two batches: calls, errors, seconds and NSM per function and department, exactly"""
        evil = 'pay "x" \\ y\nz'
        key = self.p["ingest"]
        self.assertEqual(self.srv.post(key, {"functions": [
            fn(evil, 10, 1, 30.5, department="billing", weight=2),
            fn("invoice", 4, 0, 2.0, department="billing", weight=0.5),
            fn("log", 3, 0, 1.0, department="ops")],
            "inventory": [{"name": "never", "department": "ops"}]})[0], 200)
        self.assertEqual(self.srv.post(key, {"functions": [fn(evil, 5, 2, 10.0, department="billing",
                                                              weight=2)]})[0], 200)
        status, headers, text = self.metrics(self.p["dashboard"])
        self.assertEqual(status, 200, text)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        self.promtool(text)
        self.assertEqual(parse(text), {
            ("codensm_function_calls_total", fnl(evil, "billing")): 15,
            ("codensm_function_calls_total", fnl("invoice", "billing")): 4,
            ("codensm_function_calls_total", fnl("log", "ops")): 3,
            ("codensm_function_calls_total", fnl("never", "ops")): 0,
            ("codensm_function_errors_total", fnl(evil, "billing")): 3,
            ("codensm_function_errors_total", fnl("invoice", "billing")): 0,
            ("codensm_function_errors_total", fnl("log", "ops")): 0,
            ("codensm_function_errors_total", fnl("never", "ops")): 0,
            ("codensm_function_seconds_total", fnl(evil, "billing")): 0.0405,
            ("codensm_function_seconds_total", fnl("invoice", "billing")): 0.002,
            ("codensm_function_seconds_total", fnl("log", "ops")): 0.001,
            ("codensm_function_seconds_total", fnl("never", "ops")): 0,
            ("codensm_function_nsm_total", fnl(evil, "billing")): 24,
            ("codensm_function_nsm_total", fnl("invoice", "billing")): 2,
            ("codensm_function_nsm_total", fnl("log", "ops")): 3,
            ("codensm_function_nsm_total", fnl("never", "ops")): 0,
            ("codensm_department_calls_total", dl("billing")): 19,
            ("codensm_department_calls_total", dl("ops")): 3,
            ("codensm_department_errors_total", dl("billing")): 3,
            ("codensm_department_errors_total", dl("ops")): 0,
            ("codensm_department_seconds_total", dl("billing")): 0.0425,
            ("codensm_department_seconds_total", dl("ops")): 0.001,
            ("codensm_department_nsm_total", dl("billing")): 26,
            ("codensm_department_nsm_total", dl("ops")): 3,
            ("codensm_nsm_total", ()): 29,
            ("codensm_functions_omitted", ()): 0,
            ("codensm_departments_omitted", ()): 0,
        })
        # the name's quote, backslash and newline are escaped on the wire
        self.assertIn('{function="pay \\"x\\" \\\\ y\\nz",department="billing"} 15\n', text)

    def test_the_dashboard_key_of_the_project_is_needed(self):
        """no key, a wrong key or the ingest key: 401; another project's key: 404"""
        for key in (None, "cnsmv_" + "a" * 32, self.p["ingest"]):
            status, _, text = self.metrics(key)
            self.assertEqual((status, text), (401, '{"error":"missing or unknown dashboard key"}'), key)
        status, _, text = self.metrics(self.q["dashboard"])
        self.assertEqual((status, text), (404, '{"error":"project \'prom\' not found"}'))
        status, _, text = self.metrics(self.q["dashboard"], "other")
        self.assertEqual(status, 200)
        self.promtool(text)
        self.assertEqual(parse(text), {("codensm_nsm_total", ()): 0, ("codensm_functions_omitted", ()): 0,
                                       ("codensm_departments_omitted", ()): 0})

    def test_series_beyond_the_cap_are_counted_not_shown(self):
        """505 functions in 105 departments: the top 500 and top 100 by calls, and 5 and 5 left out"""
        funcs = [fn(f"cap.f{i:03d}", 1000 - i, department=f"d{i % 105:03d}") for i in range(505)]
        self.assertEqual(self.srv.post(self.cap["ingest"], {"functions": funcs})[0], 200)
        status, _, text = self.metrics(self.cap["dashboard"], "capped")
        self.assertEqual(status, 200)
        self.promtool(text)
        m = parse(text)
        shown = sorted(dict(labels)["function"] for name, labels in m if name == "codensm_function_calls_total")
        self.assertEqual(shown, [f"cap.f{i:03d}" for i in range(500)])
        dept_calls = {}
        for i in range(505):
            dept_calls[f"d{i % 105:03d}"] = dept_calls.get(f"d{i % 105:03d}", 0) + 1000 - i
        top = sorted(dept_calls, key=lambda d: (-dept_calls[d], d))[:100]
        got = {dict(labels)["department"]: v for (name, labels), v in m.items()
               if name == "codensm_department_calls_total"}
        self.assertEqual(got, {d: dept_calls[d] for d in top})
        self.assertEqual((m[("codensm_functions_omitted", ())], m[("codensm_departments_omitted", ())]), (5, 5))
        # the left-out functions still count in their department and in the NSM
        self.assertEqual(got["d000"], sum(1000 - i for i in range(0, 505, 105)))
        self.assertEqual(m[("codensm_nsm_total", ())], sum(1000 - i for i in range(505)))


if __name__ == "__main__":
    unittest.main()
