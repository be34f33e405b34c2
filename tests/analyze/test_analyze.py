"""test_analyze.py: `codensm analyze` gives each function of a build its
control-flow shape, counts, callees and has_tests verdict under exactly the
name the runtime reports, keyed by the binary's build-id; bad databases get
a one-line error.  Expected shapes are derived by hand from
tests/analyze/proj (the rules: docs/flows.md)."""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import BUILD, INCLUDE, Case, Totals, clean_env, compile_prog, rt_link, run  # noqa: E402

PROJ = os.path.join(os.path.dirname(os.path.abspath(__file__)), "proj")
CODENSM = os.path.join(BUILD, "bin", "codensm")
ANALYZE = os.path.join(BUILD, "bin", "codensm-analyze")

S, D, L, B, E, X = "start", "decision", "loop", "block", "end", "error"


def flow(nodes, edges, decisions, loops, returns, lines, calls_out=(), has_tests=False):
    return {"nodes": [{"type": t} for t in nodes], "edges": [list(e) for e in edges],
            "decisions": decisions, "loops": loops, "returns": returns,
            "nodes_count": len(nodes), "lines": lines, "calls_out": list(calls_out),
            "has_tests": has_tests}


# Node numbers follow the statements in source order; the end node comes last.
EXPECTED = {
    # two statements, one block; the return goes to the end
    "lib.flows.straight": flow([S, B, E], [(0, 1), (1, 2)], 0, 0, 1, 6),
    # a void function falling off its end: one (implicit) return
    "lib.flows.nothing": flow([S, E], [(0, 1)], 0, 0, 1, 3),
    # if / else if / else: two decisions, plus ?: and && in the last return
    "lib.flows.classify": flow([S, D, D, B, E],
                               [(0, 1), (1, 2), (1, 4), (2, 3), (2, 4), (3, 4)], 4, 0, 3, 10),
    # case 1: case 2: is one group; case 3 falls through into case 4;
    # default takes the last "no match" edge
    "lib.flows.pick": flow([S, D, B, D, B, D, B, B, E],
                           [(0, 1), (1, 2), (1, 3), (2, 8), (3, 4), (3, 5), (4, 6), (5, 6),
                            (5, 7), (6, 8), (7, 8)], 3, 0, 1, 18),
    # for, while with a break out of an if, do-while (its test after the body)
    "lib.flows.loops": flow([S, B, L, B, L, D, B, L, B, E],
                            [(0, 1), (1, 2), (2, 3), (2, 4), (3, 2), (4, 5), (4, 8), (5, 6),
                             (5, 8), (6, 4), (7, 8), (7, 9), (8, 7)], 1, 3, 1, 15,
                            has_tests=True),
    # a backward goto is a loop node going back to the label's block
    "lib.flows.retry": flow([S, B, D, L, E], [(0, 1), (1, 2), (2, 3), (2, 4), (3, 1)], 1, 1, 1, 8),
    # goto err: an error node, then the label's code (a return here);
    # goto out_free is an ordinary forward jump
    "lib.flows.setup": flow([S, B, D, X, D, B, B, E],
                            [(0, 1), (1, 2), (2, 3), (2, 4), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7)],
                            2, 0, 2, 14, has_tests=True),
    # codensm_error() goes on to its return; abort() and exit(3) end the
    # path as errors; exit(0) ends it at the end node without a return
    "lib.flows.checked": flow([S, D, X, D, X, D, X, D, E],
                              [(0, 1), (1, 2), (1, 3), (2, 8), (3, 4), (3, 5), (5, 6), (5, 7), (7, 8)],
                              4, 0, 2, 14, ["lib.flows.straight", "lib.flows.classify"]),
    # throw ends a path as an error
    "lib.shapes.geo::Box::area": flow([S, D, X, E], [(0, 1), (1, 2), (1, 3)], 1, 0, 1, 6),
    # each catch is a decision taken from the try's entry; throw; is an error
    "lib.shapes.geo::safe_area": flow([S, D, D, X, E], [(0, 1), (0, 2), (0, 4), (1, 4), (2, 3)],
                                      2, 0, 2, 10, ["lib.shapes.geo::Box::area"]),
    # constructors and destructors return like void functions; overloaded
    # constructors are told apart by the hash of their base-object
    # mangling (_ZN3geo3BoxC2Ei: 1f3c0a25, _ZN3geo3BoxC2Ed: 223c0ede)
    "lib.shapes.geo::Box::Box#1f3c0a25": flow([S, E], [(0, 1)], 0, 0, 1, 1),
    "lib.shapes.geo::Box::Box#223c0ede": flow([S, E], [(0, 1)], 0, 0, 1, 1),
    "lib.shapes.geo::Box::~Box": flow([S, B, E], [(0, 1), (1, 2)], 0, 0, 1, 4),
    # callees in the order of their first call, each once
    "lib.shapes.shapes_demo": flow([S, B, E], [(0, 1), (1, 2)], 0, 0, 1, 5,
                                   ["lib.shapes.geo::Box::Box#1f3c0a25", "lib.shapes.geo::Box::Box#223c0ede",
                                    "lib.shapes.geo::safe_area", "lib.shapes.geo::scale#b35c00bd",
                                    "lib.shapes.geo::scale#a65bec46"]),
    "lib.shapes.geo::scale#b35c00bd": flow([S, E], [(0, 1)], 0, 0, 1, 1),
    "lib.shapes.geo::scale#a65bec46": flow([S, E], [(0, 1)], 0, 0, 1, 1),
    "main.main": flow([S, B, E], [(0, 1), (1, 2)], 0, 0, 1, 5,
                      ["lib.flows.checked", "lib.flows.straight", "lib.shapes.shapes_demo"],
                      has_tests=True),
}

C_FLAGS = ["-O1", "-g", "-pthread", "-I" + INCLUDE, "-std=gnu11", "-finstrument-functions"]
CXX_FLAGS = ["-O1", "-g", "-pthread", "-I" + INCLUDE, "-std=c++17", "-finstrument-functions"]


def database(folder, entries=None):
    """A compile_commands.json for the sample project in `folder`."""
    if entries is None:
        entries = [
            # -fipa-pta: a GCC option clang does not know, as in real builds
            {"directory": PROJ, "file": "lib/flows.c",
             "arguments": ["cc", "-c", "-fipa-pta"] + C_FLAGS + ["lib/flows.c"]},
            {"directory": PROJ, "file": "lib/shapes.cpp",
             "arguments": ["c++", "-c", "-fPIC"] + CXX_FLAGS + ["lib/shapes.cpp"]},
            {"directory": PROJ, "file": "main.c", "command": "cc -c %s main.c" % " ".join(C_FLAGS)},
        ]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "compile_commands.json"), "w") as f:
        f.write(entries if isinstance(entries, str) else json.dumps(entries))
    return folder


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


class AnalyzeCase(Case):
    def setUp(self):
        super().setUp()
        if not os.path.exists(ANALYZE):
            self.skipTest("%s not built (libclang-14-dev missing?)" % ANALYZE)

    def analyze(self, *args, **env):
        return run([CODENSM, "analyze"] + list(args), clean_env(XDG_CACHE_HOME=self.tmp, **env), timeout=120)

    def flows(self, *args):
        r = self.analyze("-p", database(os.path.join(self.tmp, "b")), *args)
        self.assertEqual(r.returncode, 0, r)
        self.assertNotIn("has errors", r.stderr)
        return {f["name"]: f for f in json.loads(r.stdout)["flows"]}


class TestShapes(AnalyzeCase):
    def test_every_sample_function_has_its_hand_derived_flow(self):
        """each sample function's nodes, edges, counts, lines and calls are exactly as derived by hand"""
        got = self.flows()
        for name, want in EXPECTED.items():
            self.assertIn(name, got)
            self.assertEqual({k: v for k, v in got[name].items() if k != "name"}, want, name)

    def test_the_build_has_no_other_function(self):
        """the project's own functions only: none from system headers (<stdexcept>, <stdlib.h>)"""
        self.assertEqual(sorted(self.flows()), sorted(EXPECTED))

    def test_samples_cover_every_node_kind(self):
        """the samples use all six node kinds, and an entry has exactly the seed's keys in order"""
        got = self.flows()
        kinds = {n["type"] for f in got.values() for n in f["nodes"]}
        self.assertEqual(kinds, {S, D, L, B, E, X})
        self.assertEqual(list(got["main.main"]), ["name", "nodes", "edges", "decisions", "loops", "returns",
                                                  "nodes_count", "lines", "calls_out", "has_tests"])

    def test_has_tests_reads_code_not_comments_or_strings(self):
        """has_tests: loops() and setup() are called in tests/test_flows.c; classify (a comment) and pick (a string) are not"""
        got = self.flows()
        self.assertEqual({n: got[n]["has_tests"] for n in
                          ("lib.flows.loops", "lib.flows.setup", "lib.flows.classify", "lib.flows.pick")},
                         {"lib.flows.loops": True, "lib.flows.setup": True,
                          "lib.flows.classify": False, "lib.flows.pick": False})

    def test_a_tests_folder_elsewhere_is_scanned_when_named(self):
        """--tests DIR: a test file there calling classify() makes it has_tests true, and loops() false"""
        t = os.path.join(self.tmp, "other", "t")
        os.makedirs(t)
        with open(os.path.join(t, "check.c"), "w") as f:
            f.write("int classify(int);\nint main(void) { return classify(1); }\n")
        got = self.flows("--tests", os.path.join(self.tmp, "other"))
        self.assertEqual((got["lib.flows.classify"]["has_tests"], got["lib.flows.loops"]["has_tests"]),
                         (True, False))


class TestTestFiles(AnalyzeCase):
    def test_which_files_are_test_files(self):
        """test files: under t/, tests/ or test/, or named test_*.c / *_test.cpp; not testing.c, t.c, a .txt or a hidden folder"""
        root = os.path.join(self.tmp, "tree")
        uses = {"t/a.c": "f1", "tests/x/b.cc": "f2", "src/foo_test.cpp": "f3", "src/test_bar.c": "f4",
                "test/c.h": "f5", "src/testing.c": "f6", "src/t.c": "f7", "docs/test_x.txt": "f8",
                ".git/tests/d.c": "f9", "src/main.c": "f10"}
        for rel, fn in uses.items():
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            with open(os.path.join(root, rel), "w") as f:
                f.write("void %s(void);\nvoid use_%s(void) { %s(); }\n" % (fn, fn, fn))
        with open(os.path.join(root, "src", "lib.c"), "w") as f:
            f.write("".join("void f%d(void) {}\n" % i for i in range(1, 11)))
        db = database(os.path.join(self.tmp, "b"), [{"directory": os.path.join(root, "src"), "file": "lib.c",
                                                     "command": "cc -c lib.c"}])
        r = self.analyze("-p", db, "--tests", root)
        self.assertEqual(r.returncode, 0, r)
        got = {f["name"]: f["has_tests"] for f in json.loads(r.stdout)["flows"]}
        self.assertEqual(got, {"lib.f%d" % i: i <= 5 for i in range(1, 11)})
        self.assertIn("5 test files under '%s'" % root, r.stderr)


class TestNames(AnalyzeCase):
    def build(self):
        lib = compile_prog("libshapes-an.so", ["lib/shapes.cpp"], cwd=PROJ, shared=True)
        app = compile_prog("flows-app", ["main.c", "lib/flows.c"], cwd=PROJ,
                           link=rt_link() + [lib, "-Wl,-rpath," + os.path.dirname(lib)])
        return app, lib

    def test_names_equal_the_runtime_s_for_c_cxx_and_a_library(self):
        """the analysed names of the program and its C++ library are exactly the names the runtime reports for them"""
        app, lib = self.build()
        out = os.path.join(self.tmp, "codensm", "flows")  # the default: where the runtime looks
        r = self.analyze("-p", database(os.path.join(self.tmp, "b")), app, lib)
        self.assertEqual(r.returncode, 0, r)
        analysed = set()
        for path in (app, lib):
            with open(os.path.join(out, build_id(path) + ".json")) as f:
                doc = json.load(f)
            self.assertEqual((doc["format"], doc["build_id"]), (1, build_id(path)))
            analysed |= {fl["name"] for fl in doc["flows"]}
        rec = self.receiver()
        p = run([app], self.env(rec))
        self.assertEqual(p.returncode, 0, p)
        reported = set(Totals(rec.committed()).inventory)
        self.assertEqual(analysed, reported)
        self.assertEqual(analysed, set(EXPECTED))
        # CODENSM_MODE unset means names: with the flows on disk where the
        # runtime would read them, still no body carries any
        self.assertEqual([b for b in rec.committed() if "flows" in b], [])

    def test_flows_file_is_keyed_by_build_id_and_can_be_embedded(self):
        """BINARY: flows go to $XDG_CACHE_HOME/codensm/flows/BUILDID.json; --embed puts the same bytes in .codensm.flows"""
        app, _ = self.build()
        copy = os.path.join(self.tmp, "app-copy")
        shutil.copy(app, copy)
        r = self.analyze("-p", database(os.path.join(self.tmp, "b")), "--embed", copy)
        self.assertEqual(r.returncode, 0, r)
        path = os.path.join(self.tmp, "codensm", "flows", build_id(copy) + ".json")
        with open(path, "rb") as f:
            written = f.read()
        dump = os.path.join(self.tmp, "section")
        subprocess.run(["objcopy", "--dump-section", ".codensm.flows=" + dump, copy, os.devnull], check=True)
        with open(dump, "rb") as f:
            self.assertEqual(f.read(), written)
        names = sorted(fl["name"] for fl in json.loads(written)["flows"])
        self.assertEqual(names, sorted(n for n in EXPECTED if n.startswith(("lib.flows.", "main."))))
        self.assertEqual(subprocess.run([copy], capture_output=True).returncode, 0)  # still runs


LUA = os.path.join(BUILD, "real", "lua", "inst", "src")


def lua_database(folder):
    """A compile_commands.json in `folder` for lua's sources, compiled -O2 for Linux."""
    sources = sorted(f for f in os.listdir(LUA) if f.endswith(".c"))
    return database(folder, [
        {"directory": LUA, "file": f,
         "arguments": ["gcc", "-std=gnu99", "-O2", "-DLUA_COMPAT_5_3", "-DLUA_USE_LINUX", "-g", "-c", f]}
        for f in sources])


class TestRealProgram(AnalyzeCase):
    def test_every_function_of_lua_gets_a_flow_under_its_runtime_name(self):
        """Lua 5.4 from Debian (tests/real/build.sh lua), -O2: every function the runtime lists has a flow"""
        exe = os.path.join(LUA, "lua")
        if not os.path.exists(exe):  # the real suite builds it too; whichever runs first
            b = subprocess.run(["bash", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "real", "build.sh"), "lua"],
                               capture_output=True, text=True)
            self.assertEqual(b.returncode, 0, "tests/real/build.sh lua failed:\n" + b.stderr[-2000:])
        db = lua_database(os.path.join(self.tmp, "lua"))
        out = os.path.join(self.tmp, "flows")
        r = self.analyze("-p", db, "--out-dir", out, "-v", exe)
        self.assertEqual(r.returncode, 0, r)
        m = re.search(r"flows of (\d+) of its (\d+) functions", r.stderr)
        self.assertIsNotNone(m, r.stderr)
        self.assertEqual(m.group(1), m.group(2), r.stderr)
        self.assertNotIn("no analysis", r.stderr)
        with open(os.path.join(out, build_id(exe) + ".json")) as f:
            flows = {fl["name"]: fl for fl in json.load(f)["flows"]}
        self.assertEqual(len(flows), int(m.group(1)))
        self.assertIn("lvm.luaV_execute", flows)  # split into .cold pieces by -O2: still one flow


class TestErrors(AnalyzeCase):
    def error(self, *args):
        r = self.analyze(*args)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        return r.stderr.strip()

    def test_missing_database_names_the_folder(self):
        """no compile_commands.json: one line naming the folder and how to make one"""
        d = os.path.join(self.tmp, "empty")
        os.makedirs(d)
        self.assertEqual(self.error("-p", d),
                         "codensm: no compile_commands.json in '%s' (No such file or directory): export one "
                         "with cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON or bear -- make" % d)

    def test_malformed_json_names_line_and_column(self):
        """a truncated compile_commands.json: one line with where the JSON breaks"""
        d = database(os.path.join(self.tmp, "bad"), '[{"directory": "/x",\n')
        self.assertEqual(self.error("-p", d),
                         "codensm: '%s/compile_commands.json' is not valid JSON: "
                         "string or '}' expected near end of file at line 2, column 0" % d)

    def test_entry_without_file_is_named(self):
        """an entry without "file": one line naming the entry"""
        d = database(os.path.join(self.tmp, "nofile"), [{"directory": "/x", "command": "cc -c a.c"},
                                                        {"directory": "/x", "command": "cc -c b.c"}])
        self.assertEqual(self.error("-p", d),
                         "codensm: '%s/compile_commands.json': entry 1 has no \"file\" string" % d)

    def test_not_an_array(self):
        """a database that is an object, not an array: one line"""
        d = database(os.path.join(self.tmp, "obj"), {"directory": "/x"})
        self.assertEqual(self.error("-p", d),
                         "codensm: '%s/compile_commands.json' is not a compilation database: "
                         "the top level is not an array" % d)

    def test_unit_in_a_missing_folder_is_skipped_with_one_line(self):
        """an entry whose directory is gone: one line naming it, and one saying nothing was analysed; exit 1"""
        d = database(os.path.join(self.tmp, "gone"), [{"directory": "/nonexistent/src", "file": "a.c",
                                                       "command": "cc -c a.c"}])
        r = self.analyze("-p", d)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr.splitlines(), [
            "codensm: skipping 'a.c': cannot enter its directory '/nonexistent/src': No such file or directory",
            "codensm: no function defined in the sources of '%s/compile_commands.json' could be analysed" % d])

    def test_binary_of_another_build_is_refused(self):
        """a BINARY none of whose functions the build defines (the plugin sample): one line, no file, exit 1"""
        other = os.path.join(BUILD, "samples", "libdiscounts.so")
        if not os.path.exists(other):
            self.skipTest("samples not built")
        out = os.path.join(self.tmp, "flows")
        r = self.analyze("-p", database(os.path.join(self.tmp, "b")), "--out-dir", out, other)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr.splitlines()[1:], [
            "codensm: none of the 2 functions of '%s' is defined in this build's sources "
            "(is it from another build?)" % other])
        self.assertFalse(os.path.exists(out))

    def test_binary_without_build_id(self):
        """a BINARY without a GNU build-id: one line saying so and how to fix it"""
        exe = os.path.join(self.tmp, "noid")
        src = os.path.join(self.tmp, "noid.c")
        with open(src, "w") as f:
            f.write("int main(void) { return 0; }\n")
        subprocess.run(["cc", "-Wl,--build-id=none", "-o", exe, src], check=True)
        r = self.analyze("-p", database(os.path.join(self.tmp, "b")), exe)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("codensm: '%s' has no GNU build-id (link it with -Wl,--build-id)\n" % exe, r.stderr)


if __name__ == "__main__":
    unittest.main()
