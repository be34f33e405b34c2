"""tests/real/test_real.py: real C programs that nobody here wrote, built from
their Debian source packages plain and with -finstrument-functions -g + the
runtime (tests/real/build.sh), then for each program:

  - its own test suite passes in both builds, with byte-identical output;
  - a workload (the commands of its test suite and a few more, one of them a
    deliberate failure) gives byte-identical stdout, stderr (less the
    runtime's own "codensm: " lines) and exit statuses in both builds;
  - the instrumented binary, run against a real codensm-server (fresh
    database, `project create`, CODENSM_INCLUDE unset), makes the server's
    API show, for a handful of functions and then for every function, the
    same call counts as `uftrace record` + `uftrace report` count for the
    same binary and the same workload, and no errors.

uftrace runs on the very binary the server run used, with CODENSM_DISABLE=1:
uftrace LD_PRELOADs libmcount, whose __cyg_profile_func_enter/exit come
before libcodensm-rt's in the symbol lookup, so it sees exactly the hook
calls the runtime sees in the other run (same code, same inlining, same
clones), and the runtime stays quiet.  A separate -finstrument-functions
build without the runtime would be a second compilation: equal in
principle, but it would compare two binaries instead of one.

Run: python3 tests/tap.py tests/real   (tests/suites/real.sh does it).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import serverlib  # noqa: E402

BUILD = os.environ.get("CODENSM_BUILD", "build")
REAL = os.path.join(ROOT, BUILD, "real")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "real")
RUNTIME_LINE = re.compile(rb"^codensm: .*\n?", re.M)


class Step:
    """One command of a workload, run with cwd = the build tree.

    argv: the command; stdin: a path relative to the tree, ("out", name[, n])
    for (the first n bytes of) what an earlier step of the same run wrote, or
    (path, n) for the first n bytes of a tree file; status: the exit status
    every build must give."""

    def __init__(self, name, argv, stdin=None, status=0):
        self.name, self.argv, self.stdin, self.status = name, argv, stdin, status


def clean_env(extra=None):
    """The environment every run starts from: nothing of ours, nothing that
    changes a program's behaviour (BZIP2/BZIP flags, LUA_INIT)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CODENSM_", "LUA_INIT", "UFTRACE"))
           and k not in ("BZIP", "BZIP2", "LD_PRELOAD", "LD_LIBRARY_PATH",
                         # under `make test` these make every sub-make print
                         # "Entering directory .../plain" vs ".../inst"
                         "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env["LC_ALL"] = "C"
    env.update(extra or {})
    return env


def run_steps(tree, steps, env, out, wrap=None, timeout=120):
    """Runs steps in tree; stdout of step S goes to out/S.out.  env: a dict,
    or a function of the step giving one.  wrap(i, step) returns a prefix for
    the command (uftrace).  Returns {name: (status, stdout, stderr bytes)}."""
    os.makedirs(out, exist_ok=True)
    res = {}
    for i, s in enumerate(steps):
        if s.stdin is None:
            data = b""
        elif isinstance(s.stdin, tuple) and s.stdin[0] == "out":
            with open(os.path.join(out, s.stdin[1] + ".out"), "rb") as f:
                data = f.read(*s.stdin[2:])
        elif isinstance(s.stdin, tuple):
            with open(os.path.join(tree, s.stdin[0]), "rb") as f:
                data = f.read(s.stdin[1])
        else:
            with open(os.path.join(tree, s.stdin), "rb") as f:
                data = f.read()
        argv = (wrap(i, s) if wrap else []) + s.argv
        p = subprocess.run(argv, cwd=tree, env=env(s) if callable(env) else env, input=data, capture_output=True,
                           timeout=timeout)
        with open(os.path.join(out, s.name + ".out"), "wb") as f:
            f.write(p.stdout)
        with open(os.path.join(out, s.name + ".err"), "wb") as f:
            f.write(p.stderr)
        res[s.name] = (p.returncode, p.stdout, p.stderr)
    return res


def uftrace_status(d):
    """The recorded program's own exit status (`uftrace record` exits 1
    whenever the program exits non-zero; `uftrace info` has the status)."""
    p = subprocess.run(["uftrace", "info", "-d", d], capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"exit status\s*:\s*(exited with code|terminated by signal): (\d+)", p.stdout)
    if not m:
        raise AssertionError(f"no exit status in `uftrace info -d {d}`:\n{p.stdout}{p.stderr}")
    return int(m.group(2)) * (1 if m.group(1).startswith("exited") else -1)


def fn_part(name):
    """The function part of a runtime name ("module.path.function")."""
    return name.rsplit(".", 1)[-1]


def uftrace_counts(dirs):
    """Sums `uftrace report` call counts over recordings, by symbol name."""
    counts = {}
    for d in dirs:
        p = subprocess.run(["uftrace", "report", "-d", d, "-f", "call", "--no-pager"],
                           capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise AssertionError(f"uftrace report -d {d} failed: {p.stderr}")
        for line in p.stdout.splitlines():
            m = re.match(r"^\s*(\d+)\s+(\S.*)$", line)
            if m:
                name = m.group(2).strip()
                counts[name] = counts.get(name, 0) + int(m.group(1))
    return counts


def server_rows(srv, key, project):
    """Every function row the API has for the project (all pages)."""
    rows, offset = [], 0
    while True:
        status, body = srv.get(key, project, "functions", window="1h", limit=500,
                               offset=offset, sort="name", order="asc")
        if status != 200:
            raise AssertionError(f"GET functions: {status} {body}")
        rows += body["rows"]
        offset += len(body["rows"])
        if not body["rows"] or offset >= body["total"]:
            return rows


def by_function(rows, field):
    """Sums a field of the server's rows by function part (two static
    functions of the same name in different files add up, as uftrace,
    which knows only symbol names, adds them up too)."""
    out = {}
    for r in rows:
        k = fn_part(r["name"])
        out[k] = out.get(k, 0) + r[field]
    return out


class RealProgram:
    """A mixin: subclasses say what to build, run and compare."""
    program = None       # tests/real/build.sh name
    binaries = ()        # relative to the tree, must link libcodensm-rt
    suite_argv = None    # the program's own test suite (run in the tree)
    suite_files = ()     # what the suite writes, compared between builds
    steps = ()           # the workload
    functions = ()       # the handful compared one by one
    env = {}             # extra environment (relative paths: in the tree)
    uftrace_opts = ("--no-libcall",)

    # ---- set up: build, suites, workload plain / against the server / uftrace

    @classmethod
    def setUpClass(cls):
        p = subprocess.run(["bash", os.path.join(HERE, "build.sh"), cls.program],
                           capture_output=True, text=True, timeout=600,
                           env=clean_env({"CODENSM_BUILD": BUILD}))
        if p.returncode != 0:
            raise AssertionError(f"tests/real/build.sh {cls.program} failed:\n"
                                 f"{p.stdout}{p.stderr[-3000:]}")
        cls.dir = os.path.join(REAL, cls.program)
        cls.plain = os.path.join(cls.dir, "plain")
        cls.inst = os.path.join(cls.dir, "inst")
        cls.art = os.path.join(ARTIFACTS, cls.program)
        shutil.rmtree(cls.art, ignore_errors=True)
        os.makedirs(cls.art)
        cls.tmp = tempfile.mkdtemp(prefix=f"codensm-real-{cls.program}-")
        cls.srv = None
        try:
            cls.run_all()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tree_env(cls, tree, extra=None):
        env = {k: (os.path.join(tree, v) if k == "LD_LIBRARY_PATH" else v)
               for k, v in cls.env.items()}
        env["CODENSM_SPOOL_DIR"] = os.path.join(cls.tmp, "spool")
        env.update(extra or {})
        return clean_env(env)

    @classmethod
    def run_all(cls):
        # 1. the program's own test suite, both builds (the runtime with no
        #    key: it counts, sends nothing, says so on stderr)
        cls.suite = {}
        for kind, tree in (("plain", cls.plain), ("inst", cls.inst)):
            p = subprocess.run(cls.suite_command(tree), cwd=tree, env=cls.tree_env(tree),
                               capture_output=True, timeout=300)
            cls.suite[kind] = p
            with open(os.path.join(cls.art, f"suite-{kind}.log"), "wb") as f:
                f.write(p.stdout + b"\n--- stderr ---\n" + p.stderr)

        # 2. the workload, plain
        cls.plain_res = run_steps(cls.plain, cls.steps, cls.tree_env(cls.plain),
                                  os.path.join(cls.art, "plain"))

        # 3. the workload, instrumented, against a fresh server: one project
        #    per command, so that a difference names the command
        cls.srv = serverlib.Server(cls.tmp)
        keys = {s.name: cls.srv.project(f"{cls.program}-{s.name}", plan="scale")
                for s in cls.steps}
        cls.srv.start()
        cls.endpoint = f"http://127.0.0.1:{cls.srv.port}/codensm/ingest"
        cls.inst_res = run_steps(cls.inst, cls.steps, lambda s: cls.server_env(keys[s.name]),
                                 os.path.join(cls.art, "inst"))
        cls.step_rows = {s.name: server_rows(cls.srv, keys[s.name]["dashboard"],
                                             f"{cls.program}-{s.name}") for s in cls.steps}
        cls.rows = [r for s in cls.steps for r in cls.step_rows[s.name]]

        # 4. the same binary and workload under uftrace
        ut = os.path.join(cls.tmp, "uftrace")
        os.makedirs(ut)
        dirs = [os.path.join(ut, s.name) for s in cls.steps]
        wrap = lambda i, s: ["uftrace", "record", "--no-event", *cls.uftrace_opts,  # noqa: E731
                             "-d", dirs[i], "--"]
        cls.uftrace_res = run_steps(cls.inst, cls.steps,
                                    cls.tree_env(cls.inst, {"CODENSM_DISABLE": "1"}),
                                    os.path.join(cls.art, "uftrace"), wrap=wrap)
        for s, d in zip(cls.steps, dirs):
            rc, out, err = cls.uftrace_res[s.name]
            if rc not in (0, 1):
                raise AssertionError(f"uftrace record of {s.name} exited {rc}:\n"
                                     + err.decode(errors="replace")[-2000:])
            cls.uftrace_res[s.name] = (uftrace_status(d), out, err)
        cls.step_uftrace = {s.name: uftrace_counts([d]) for s, d in zip(cls.steps, dirs)}
        # uftrace --no-libcall loses the entry of a function that calls
        # exit() (minigzip's error(): `uftrace replay` without the option
        # shows the call).  Steps that exit non-zero are recorded a second
        # time with library calls, and a function the server counted that
        # the first recording has not seen at all takes its count from the
        # second.  Only such functions: with library calls on, uftrace counts
        # a call into an instrumented shared library twice (PLT and callee).
        if "--no-libcall" in cls.uftrace_opts:
            failing = [s for s in cls.steps if s.status != 0]
            opts = tuple(o for o in cls.uftrace_opts if o != "--no-libcall")
            ldirs = [os.path.join(ut, s.name + "-libcall") for s in failing]
            run_steps(cls.inst, failing, cls.tree_env(cls.inst, {"CODENSM_DISABLE": "1"}),
                      os.path.join(cls.art, "uftrace"),  # inputs: earlier steps' outputs
                      wrap=lambda i, s: ["uftrace", "record", "--no-event", *opts,
                                         "-d", ldirs[i], "--"])
            for s, d in zip(failing, ldirs):
                counted = {k for k, v in by_function(cls.step_rows[s.name], "calls").items() if v}
                have = cls.step_uftrace[s.name]
                for k, v in uftrace_counts([d]).items():
                    if k in counted and k not in have:
                        have[k] = v
        cls.uftrace = {}
        for counts in cls.step_uftrace.values():
            for k, v in counts.items():
                cls.uftrace[k] = cls.uftrace.get(k, 0) + v
        cls.server = by_function(cls.rows, "calls")
        cls.extra()
        cls.write_counts()

    @classmethod
    def server_env(cls, keys):
        return cls.tree_env(cls.inst, {"CODENSM_API_KEY": keys["ingest"],
                                       "CODENSM_ENDPOINT": cls.endpoint})

    @classmethod
    def extra(cls):
        """More runs a subclass needs (the server is still up)."""

    @classmethod
    def suite_command(cls, tree):
        return cls.suite_argv

    @classmethod
    def write_counts(cls):
        names = sorted(set(cls.uftrace) | {k for k, v in cls.server.items() if v})
        with open(os.path.join(cls.art, "counts.txt"), "w") as f:
            f.write(f"# {cls.program}: function, server calls, uftrace calls\n")
            for n in names:
                mark = "" if cls.server.get(n, 0) == cls.uftrace.get(n, 0) else "   <-- differs"
                f.write(f"{n} {cls.server.get(n, 0)} {cls.uftrace.get(n, 0)}{mark}\n")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop() if cls.srv else 0
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"codensm-server exited {rc} on SIGTERM")

    # ---- the tests -----------------------------------------------------------

    def test_0_built(self):
        """{p}: both builds exist; only the instrumented one links libcodensm-rt and calls the hooks"""
        for b in self.binaries:
            for kind, tree in (("plain", self.plain), ("inst", self.inst)):
                path = os.path.join(tree, b)
                self.assertTrue(os.access(path, os.X_OK), f"{kind} {b} was not built")
                dyn = subprocess.run(["readelf", "-d", "--dyn-syms", "-W", path],
                                     capture_output=True, text=True).stdout
                linked = "libcodensm-rt.so" in dyn
                hooks = "__cyg_profile_func_enter" in dyn
                self.assertEqual((linked, hooks), (kind == "inst", kind == "inst"),
                                 f"{kind} {b}: links libcodensm-rt, references the hooks")

    def test_1_suite_passes(self):
        """{p}: its own test suite passes in both builds"""
        for kind in ("plain", "inst"):
            p = self.suite[kind]
            self.assertEqual(p.returncode, 0, f"{kind}: {' '.join(self.suite_argv)} failed:\n"
                             + (p.stdout + p.stderr).decode(errors="replace")[-2000:])

    def test_1_suite_output_identical(self):
        """{p}: its test suite's stdout, stderr (less the runtime's lines) and files are byte-identical"""
        a, b = self.suite["plain"], self.suite["inst"]
        self.assertEqual(a.stdout, b.stdout, "suite stdout")
        self.assertEqual(a.stderr, RUNTIME_LINE.sub(b"", b.stderr), "suite stderr")
        for f in self.suite_files:
            with open(os.path.join(self.plain, f), "rb") as x, \
                    open(os.path.join(self.inst, f), "rb") as y:
                self.assertTrue(x.read() == y.read(), f"{f} differs between the builds")

    def test_2_workload_output_identical(self):
        """{p}: every workload command's stdout and stderr are byte-identical (plain, with the server, under uftrace)"""
        for s in self.steps:
            _, out, err = self.plain_res[s.name]
            _, iout, ierr = self.inst_res[s.name]
            _, uout, _ = self.uftrace_res[s.name]
            self.assertTrue(out == iout, f"{s.name}: stdout differs (tests/artifacts/real/)")
            self.assertTrue(out == uout, f"{s.name}: stdout under uftrace differs")
            self.assertEqual(err, RUNTIME_LINE.sub(b"", ierr), f"{s.name}: stderr")

    def test_2_same_exit_status(self):
        """{p}: every workload command exits by itself with the same status in every build"""
        for s in self.steps:
            got = (self.plain_res[s.name][0], self.inst_res[s.name][0],
                   self.uftrace_res[s.name][0])
            self.assertEqual(got, (s.status,) * 3, f"{s.name}: exit status plain, inst, uftrace")

    def test_3_nothing_spooled(self):
        """{p}: the runtime sent everything at exit (its spool directory holds nothing)"""
        spool = os.path.join(self.tmp, "spool")
        left = [os.path.join(d, f) for d, _, fs in os.walk(spool) for f in fs]
        self.assertEqual(left, [])

    def test_3_no_errors(self):
        """{p}: the server shows no failed calls (nothing called codensm_error)"""
        self.assertEqual({r["name"]: r["errors"] for r in self.rows if r["errors"]}, {})

    def check_every_function(self, step):
        server = {k: v for k, v in by_function(self.step_rows[step.name], "calls").items() if v}
        uftrace = self.step_uftrace[step.name]
        diff = {n: (server.get(n, 0), uftrace.get(n, 0))
                for n in set(server) | set(uftrace)
                if server.get(n, 0) != uftrace.get(n, 0)}
        self.assertGreater(len(uftrace), 5, "uftrace counted too few functions")
        self.assertEqual(diff, {}, f"[{step.name}] exit status {step.status}: "
                         "function: (server calls, uftrace calls)")


def function_test(fn):
    def test(self):
        self.assertIn(fn, self.uftrace, f"uftrace did not count {fn}")
        got, want = self.server.get(fn, 0), self.uftrace[fn]
        self.assertGreater(want, 1, f"{fn} is not called a non-trivial number of times")
        self.assertEqual(got, want, f"{fn}: server calls (got) vs uftrace calls (expected)")
    return test


def describe_stdin(stdin):
    if stdin is None:
        return ""
    if isinstance(stdin, tuple) and stdin[0] == "out":
        what = f"the output of [{stdin[1]}]"
        return f" < {'first %d bytes of ' % stdin[2] if len(stdin) > 2 else ''}{what}"
    if isinstance(stdin, tuple):
        return f" < first {stdin[1]} bytes of {stdin[0]}"
    return f" < {stdin}"


def every_function_test(step):
    def test(self):
        self.check_every_function(step)
    return test


def program(cls):
    """Class decorator: one test per compared function and one per workload
    command comparing every function; {p} in docstrings."""
    for s in cls.steps:
        t = every_function_test(s)
        t.__doc__ = (f"{cls.program} [{s.name}]: `{' '.join(s.argv)}{describe_stdin(s.stdin)}`"
                     + (f" (exits {s.status})" if s.status else "")
                     + ": for every function, the server's call count equals uftrace's")
        setattr(cls, f"test_5_every_function_{s.name}", t)
    for fn in cls.functions:
        t = function_test(fn)
        t.__doc__ = f"{cls.program}: the server counts {fn} as often as uftrace does"
        setattr(cls, f"test_4_calls_{fn}", t)
    for name in dir(cls):
        m = getattr(cls, name)
        if name.startswith("test_") and callable(m) and m.__doc__ and "{p}" in m.__doc__:
            def bound(self, _m=m):
                return _m(self)
            bound.__doc__ = m.__doc__.replace("{p}", cls.program)
            setattr(cls, name, bound)
    return cls


# ---- the programs -------------------------------------------------------------

def bz(name, *args, stdin, status=0):
    return Step(name, ["./bzip2", *args], stdin, status)


@program
class Bzip2(RealProgram, unittest.TestCase):
    """bzip2 1.0.8: the bzip2 executable and Debian's libbz2.so, both
    instrumented (the executable calls the library through its PLT)."""
    program = "bzip2"
    binaries = ("bzip2", "libbz2.so.1.0")
    env = {"LD_LIBRARY_PATH": "."}   # as its Makefile's test target does
    suite_files = ("sample1.rb2", "sample2.rb2", "sample3.rb2",
                   "sample1.tst", "sample2.tst", "sample3.tst")
    # `make check` = `make test` (compress and decompress the three samples,
    # cmp against the references); the six commands are also the workload.
    steps = (
        bz("c1", "-1", stdin="sample1.ref"),
        bz("c2", "-2", stdin="sample2.ref"),
        bz("c3", "-3", stdin="sample3.ref"),
        bz("d1", "-d", stdin="sample1.bz2"),
        bz("d2", "-d", stdin="sample2.bz2"),
        bz("d3s", "-ds", stdin="sample3.bz2"),
        bz("c9", "-9", stdin="words2"),
        # A truncated stream: bzip2 exits 2 from deep inside its call stack
        # (compressedStreamEOF -> cleanUpAndFail -> exit).
        bz("truncated", "-d", stdin=("sample1.bz2", 20000), status=2),
        # Not bzip2 data at all: exit 2 too.
        bz("notbz2", "-d", stdin="words1", status=2),
    )
    functions = ("mainGtU", "bsW", "mainSimpleSort", "mainQSort3", "mmed3",
                 "add_pair_to_block", "BZ2_hbMakeCodeLengths", "BZ2_decompress",
                 "BZ2_bzWrite", "BZ2_indexIntoF")

    @classmethod
    def suite_command(cls, tree):
        with open(os.path.join(tree, ".codensm-make-vars")) as f:
            return ["make", "check"] + f.read().splitlines()

    suite_argv = ["make", "check"]


def mz(name, *args, stdin, status=0):
    return Step(name, ["./minigzip", *args], stdin, status)


@program
class Zlib(RealProgram, unittest.TestCase):
    """zlib 1.2.13: libz.a linked into its example and minigzip programs."""
    program = "zlib"
    binaries = ("example", "minigzip")
    suite_argv = ["make", "test"]    # teststatic (example, minigzip) and test64
    steps = (
        Step("example", ["./example", "example.tmp"]),
        mz("gz1", "-1", stdin="zlib.h"),
        mz("gz9", "-9", stdin="ChangeLog"),
        mz("gzh", "-h", stdin="ChangeLog"),     # Huffman only
        mz("gzr", "-r", stdin="deflate.c"),     # run-length
        mz("gzf", "-f", stdin="zlib.3"),        # filtered
        mz("gunzip9", "-d", stdin=("out", "gz9")),
        mz("gunzip1", "-d", stdin=("out", "gz1")),
        mz("gunziph", "-d", stdin=("out", "gzh")),
        # A truncated stream: minigzip exits 1 from inside gz_uncompress
        # (error() -> exit).  Data that is not gzip at all is copied as is.
        mz("truncated", "-d", stdin=("out", "gz9", 3000), status=1),
    )
    functions = ("deflate", "longest_match", "fill_window", "deflate_slow",
                 "compress_block", "build_tree", "pqdownheap", "inflate",
                 "inflate_fast", "crc32_z")


@program
class Lua(RealProgram, unittest.TestCase):
    """Lua 5.4.4: the lua interpreter (liblua.a linked in) running a
    benchmark script of its C API, string, table, GC and math code."""
    program = "lua"
    binaries = ("src/lua",)
    # The source package has no test suite of its own (Lua's is a separate
    # tarball): the suite is the benchmark script, compared byte for byte.
    suite_argv = ["src/lua", os.path.join(HERE, "lua", "bench.lua")]
    steps = (
        Step("bench", ["src/lua", os.path.join(HERE, "lua", "bench.lua")]),
        Step("chunk", ["src/lua", "-e", "local s = 0 for i = 1, 1000 do s = s + #tostring(i) end print(s)"]),
        Step("syntaxerr", ["src/lua", "-e", "x = = 1"], status=1),
    )
    functions = ("luaV_execute", "luaD_precall", "luaH_resize", "luaS_newlstr",
                 "auxsort", "sort_comp", "luaC_step", "freeobj", "luaL_tolstring",
                 "str_format")

    @classmethod
    def extra(cls):
        # errors.lua longjmps (errors, yields from C): uftrace 0.13 loses
        # its place at the first longjmp in a -finstrument-functions binary,
        # so the expected counts come from the script itself.
        keys = cls.srv.project("lua-errors", plan="scale")
        script = os.path.join(HERE, "lua", "errors.lua")
        step = [Step("errors", ["src/lua", script])]
        cls.err_plain = run_steps(cls.plain, step, cls.tree_env(cls.plain),
                                  os.path.join(cls.art, "plain"))["errors"]
        cls.err_inst = run_steps(cls.inst, step, cls.server_env(keys),
                                 os.path.join(cls.art, "inst"))["errors"]
        cls.err_rows = server_rows(cls.srv, keys["dashboard"], "lua-errors")

    ERRORS_EXPECTED = {"luaB_pcall": 300, "luaB_error": 110, "lua_error": 110,
                       "luaB_coresume": 70, "lua_resume": 70, "luaB_yield": 50,
                       "luaB_cocreate": 11, "luaD_throw": 160}

    def test_6_longjmp_output(self):
        """lua: errors.lua (pcall/error, coroutines: longjmp) runs identically in both builds"""
        self.assertEqual(self.err_plain[0], 0, self.err_plain[2])
        self.assertEqual(self.err_plain, (self.err_inst[0], self.err_inst[1],
                                          RUNTIME_LINE.sub(b"", self.err_inst[2])))
        self.assertEqual(self.err_plain[1], b"pcall\t200\t100\nyield\t1275\t9\tdead\ncoerror\t10\n")

    def test_6_longjmp_counts(self):
        """lua: frames left by longjmp count once each (pcall 300, error 110, resume 70, yield 50, throw 160)"""
        got = by_function(self.err_rows, "calls")
        with open(os.path.join(self.art, "errors-counts.txt"), "w") as f:
            for n, want in self.ERRORS_EXPECTED.items():
                f.write(f"{n} {got.get(n, 0)} {want}\n")
        self.assertEqual({n: got.get(n, 0) for n in self.ERRORS_EXPECTED}, self.ERRORS_EXPECTED)
        self.assertEqual({r["name"]: r["errors"] for r in self.err_rows if r["errors"]}, {},
                         "a longjmp is not an error")
