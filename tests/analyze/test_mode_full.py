"""test_mode_full.py: a program analysed with `codensm analyze` and run with
CODENSM_MODE=full ships the flow of every function it tracks (called or
not) exactly once, in the body's top-level "flows" array, beside the
function's inventory record; calls_out keeps only tracked functions;
CODENSM_MODE=names (the default) ships none; a bad mode is one line naming
the variable."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_analyze import CODENSM, C_FLAGS, EXPECTED, PROJ, AnalyzeCase, build_id, database  # noqa: E402
from harness import Totals, clean_env, compile_prog, rt_link, run  # noqa: E402

# Every function of the program and its library (test_analyze's EXPECTED):
# main() calls 12 of them, pick, loops, retry, setup and nothing never run.
TRACKED = sorted(EXPECTED)

# A program that flushes twice, calling the same function before each.
TWICE = r"""
#include "codensm.h"
int twice_work(int x)
{
	if (x > 3)
		return x * 2;
	return x;
}
int main(int argc, char **argv)
{
	(void)argv;
	int r = twice_work(argc);
	codensm_flush();
	r += twice_work(argc + 1);
	codensm_flush();
	return r == 0;
}
"""


def flows_of(bodies):
    """Every flow entry committed, in order (duplicates kept)."""
    return [fl for b in bodies for fl in b.get("flows", [])]


def expected_flow(name, tracked=lambda n: True):
    want = dict(EXPECTED[name], name=name)
    want["calls_out"] = [c for c in want["calls_out"] if tracked(c)]
    return want


class TestModeFull(AnalyzeCase):
    def app(self):
        lib = compile_prog("libshapes-an.so", ["lib/shapes.cpp"], cwd=PROJ, shared=True)
        app = compile_prog("flows-app", ["main.c", "lib/flows.c"], cwd=PROJ,
                           link=rt_link() + [lib, "-Wl,-rpath," + os.path.dirname(lib)])
        r = self.analyze("-p", database(os.path.join(self.tmp, "b")), app, lib)
        self.assertEqual(r.returncode, 0, r)
        return app

    def ship(self, **env):
        app = self.app()
        rec = self.receiver()
        p = run([app], self.env(rec, **env))
        self.assertEqual(p.returncode, 0, p)
        return rec.committed(), p

    def test_full_mode_ships_every_tracked_function_s_flow_once(self):
        """CODENSM_MODE=full: the flows of the 17 functions, called or not, each once, equal to the analysis"""
        bodies, _ = self.ship(CODENSM_MODE="full")
        got = flows_of(bodies)
        self.assertEqual(sorted(fl["name"] for fl in got), TRACKED)
        self.assertEqual({fl["name"]: fl for fl in got}, {n: expected_flow(n) for n in TRACKED})
        # the seed's key order, exactly
        self.assertEqual(list(got[0]), ["name", "nodes", "edges", "decisions", "loops", "returns",
                                        "nodes_count", "lines", "calls_out", "has_tests"])

    def test_a_flow_rides_in_the_body_of_its_inventory_record(self):
        """each flow is in a body whose inventory holds the same function"""
        bodies, _ = self.ship(CODENSM_MODE="full")
        for b in bodies:
            inv = {f["name"] for f in b.get("inventory", [])}
            for fl in b.get("flows", []):
                self.assertIn(fl["name"], inv)

    def test_names_mode_and_the_default_ship_none(self):
        """CODENSM_MODE=names and no CODENSM_MODE: the same run ships no flows section and no build-id"""
        for env in ({"CODENSM_MODE": "names"}, {}):
            bodies, _ = self.ship(**env)
            self.assertEqual(Totals(bodies).fns["main.main"]["calls"], 1)
            self.assertEqual([b for b in bodies if "flows" in b], [], env)
            self.assertEqual([b["_meta"]["build_id"] for b in bodies if "build_id" in b["_meta"]], [], env)

    def test_full_mode_names_the_build_the_flows_came_from(self):
        """CODENSM_MODE=full: every body's _meta.build_id is the program's GNU build-id"""
        bodies, _ = self.ship(CODENSM_MODE="full")
        self.assertEqual({b["_meta"].get("build_id") for b in bodies}, {build_id(self.app())})

    def test_calls_out_keeps_only_tracked_functions(self):
        """CODENSM_EXCLUDE drops an excluded callee from calls_out (and its own flow); CODENSM_INCLUDE keeps only included ones"""
        bodies, _ = self.ship(CODENSM_MODE="full", CODENSM_EXCLUDE="lib.flows.straight")
        got = {fl["name"]: fl for fl in flows_of(bodies)}
        self.assertNotIn("lib.flows.straight", got)
        self.assertEqual(got["main.main"]["calls_out"], ["lib.flows.checked", "lib.shapes.shapes_demo"])
        self.assertEqual(got["lib.flows.checked"]["calls_out"], ["lib.flows.classify"])
        bodies, _ = self.ship(CODENSM_MODE="full", CODENSM_INCLUDE="main,lib.shapes.geo::safe_area")
        got = {fl["name"]: fl for fl in flows_of(bodies)}
        self.assertEqual(sorted(got), ["lib.shapes.geo::safe_area", "main.main"])
        self.assertEqual(got["main.main"]["calls_out"], [])
        self.assertEqual(got["lib.shapes.geo::safe_area"]["calls_out"], [])

    def twice(self, plan=()):
        """TWICE, analysed and run with CODENSM_MODE=full: the committed bodies."""
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "twice.c"), "w") as f:
            f.write(TWICE)
        app = compile_prog("twice-app-" + os.path.basename(self.tmp), ["twice.c"], cwd=src)
        db = database(os.path.join(self.tmp, "b"), [
            {"directory": src, "file": "twice.c", "arguments": ["cc", "-c"] + C_FLAGS + ["twice.c"]}])
        r = self.analyze("-p", db, app)
        self.assertEqual(r.returncode, 0, r)
        rec = self.receiver(plan=plan)
        p = run([app], self.env(rec, CODENSM_MODE="full"))
        self.assertEqual(p.returncode, 0, p)
        return rec.committed()

    def test_a_flow_is_not_sent_again_in_later_flushes(self):
        """three flushes (two codensm_flush, the exit's): only the first body holds flows"""
        bodies = self.twice()
        self.assertEqual(len(bodies), 3)
        self.assertEqual([sorted(fl["name"] for fl in b.get("flows", [])) for b in bodies],
                         [["twice.main", "twice.twice_work"], [], []])
        self.assertEqual([f["name"] for f in bodies[1]["functions"]], ["twice.twice_work"])
        # an if whose both ways return: start, decision, end (a return is no block)
        self.assertEqual({fl["name"]: fl for fl in flows_of(bodies)}["twice.twice_work"], {
            "name": "twice.twice_work", "nodes": [{"type": "start"}, {"type": "decision"}, {"type": "end"}],
            "edges": [[0, 1], [1, 2]], "decisions": 1, "loops": 0, "returns": 2, "nodes_count": 3,
            "lines": 6, "calls_out": [], "has_tests": False})

    def test_a_flow_lost_to_a_failed_send_rides_again(self):
        """the first flush answered 503: the flows ride in the next body, once in all"""
        bodies = self.twice(plan=[503])
        self.assertEqual(sorted(fl["name"] for fl in flows_of(bodies)), ["twice.main", "twice.twice_work"])
        self.assertEqual(Totals(bodies).fns["twice.twice_work"]["calls"], 2)

    def test_doctor_says_whether_full_mode_finds_the_analysis(self):
        """codensm doctor: names mode sends none; full mode before analyze is one line and exit 1; after, the count"""
        lib = compile_prog("libshapes-an.so", ["lib/shapes.cpp"], cwd=PROJ, shared=True)
        app = compile_prog("flows-app", ["main.c", "lib/flows.c"], cwd=PROJ,
                           link=rt_link() + [lib, "-Wl,-rpath," + os.path.dirname(lib)])
        doctor = lambda **env: run([CODENSM, "doctor", app], clean_env(XDG_CACHE_HOME=self.tmp, **env))
        r = doctor()
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("flows: not sent (CODENSM_MODE=names, the default)\n", r.stdout)
        r = doctor(CODENSM_MODE="full")
        self.assertEqual(r.returncode, 1, r)
        folder = os.path.join(self.tmp, "codensm", "flows")
        self.assertEqual(r.stderr, f"codensm: CODENSM_MODE=full, but no analysis of '{app}' (build-id {build_id(app)})"
                                   f" in '{folder}' or in its .codensm.flows section:"
                                   f" run codensm analyze -p BUILD_DIR {app}\n")
        self.assertEqual(self.analyze("-p", database(os.path.join(self.tmp, "b")), app).returncode, 0)
        r = doctor(CODENSM_MODE="full")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn(f"flows: CODENSM_MODE=full, 9 functions analysed, from {folder}/{build_id(app)}.json\n", r.stdout)

    def test_a_bad_mode_is_one_line_and_names_it(self):
        """CODENSM_MODE=fast: one line naming the variable, the value and the choices; names mode kept"""
        bodies, p = self.ship(CODENSM_MODE="fast")
        lines = [ln for ln in p.stderr.splitlines() if "CODENSM_MODE" in ln]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("'fast'", lines[0])
        self.assertIn("names, full", lines[0])
        self.assertEqual([b for b in bodies if "flows" in b], [])


if __name__ == "__main__":
    unittest.main()
