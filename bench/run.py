#!/usr/bin/env python3
"""run.py: the benchmark runner behind `make bench`.

Runs every variant of every workload alternately in one session (round after
round, so drift and neighbours hit all variants alike), takes the median of
--runs runs, checks every output against the uninstrumented build, prints
one table of overhead ratios against the targets and writes it to
bench/results/<date>.md and .json, and into docs/performance.md between its
bench markers (a full run only; --report JSON --doc rewrites it from a saved
run), so the documented table is always one run's output.

Overhead of a variant = its time - the baseline's time.  Single-thread rows
use the child's CPU time (user + sys, which includes the runtime's flusher
and uftrace's writers) because it is steadier than wall time on a shared
machine; the thread-scaling row uses wall time, since that is what
throughput means.  Both are kept in the JSON.

The timed runs send to a local sink (a stand-in for the ingest server that
takes every body) with a flush interval of an hour: the flusher sleeps, each
run posts once at exit, and the hot path is what is measured.  The flusher
is measured on its own (payload_rate, and the steady-state run, which
sends to the sink every second).  Last, codensm-server under load: the
runs of tests/load/run_load.py, whose requests per second and latency are
held to a floor here (`make test` asserts only the stored data).
"""
import argparse
import datetime
import glob
import http.server
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- running one command -------------------------------------------------

def run_once(argv, env, stdout=None, stdin=None, cwd=None):
    """Run argv to completion; returns (wall s, cpu s, stderr text).
    Raises on a non-zero exit, with the command and its stderr."""
    errf = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdout=stdout or subprocess.DEVNULL,
                         stdin=stdin, stderr=errf, cwd=cwd)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    errf.seek(0)
    err = errf.read().decode(errors="replace")
    errf.close()
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(argv), p.returncode,
                                                  err.strip()[-2000:]))
    return wall, ru.ru_utime + ru.ru_stime, err


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(rs):
    """' (quartiles a to b)' of per-round ratios: how far one round's ratio
    strays on this machine, so a reader can tell a miss from the noise."""
    finite = [r for r in rs if math.isfinite(r)]
    if len(finite) < 4:
        return ""
    q = statistics.quantiles(finite, n=4)
    # A round whose denominator overhead came out <= 0 (the machine's
    # noise larger than the hooks) has no ratio; the median counts it as
    # infinite, against the runtime, and the quartiles leave it out.
    gone = len(rs) - len(finite)
    return " (quartiles %.2f to %.2f%s)" % (
        q[0], q[2], "; %d of %d rounds had no overhead to divide by" % (gone, len(rs))
        if gone else "")


# ---- variants ------------------------------------------------------------

class Variant:
    """How one build is run: which binary suffix, which environment, and an
    optional wrapper (uftrace) or working directory (gprof)."""

    def __init__(self, name, kind, env=None, wrap=None, cwd_tmp=False):
        self.name, self.kind = name, kind
        self.env, self.wrap, self.cwd_tmp = env or {}, wrap, cwd_tmp


def base_env(tmp):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODENSM_")}
    env["CODENSM_FLUSH_INTERVAL"] = "3600"
    env["CODENSM_ENDPOINT"] = "http://127.0.0.1:9/codensm/ingest"
    env["CODENSM_SPOOL_DIR"] = os.path.join(tmp, "spool")
    # The symbol index cache, as a user has it once a build has run:
    # filled by each binary's first run (start-up measures it cold too).
    env["CODENSM_SYMBOL_CACHE"] = os.path.join(tmp, "symbols")
    env["CODENSM_LOG"] = "quiet"
    return env


# Every name the runtime gives starts with a component of a source path;
# excluding each first component seen in this tree and its usual roots
# excludes every function of the workloads.
EXCLUDE_ALL = "bench,build,real,work,home,root,tmp,usr,src," \
    "blocksort,huffman,crctable,randtable,compress,decompress,bzlib,bzip2," \
    "calls,manyfn,fib,main," \
    "lapi,lauxlib,lbaselib,lcode,lcorolib,lctype,ldblib,ldebug,ldo,ldump,lfunc,lgc," \
    "linit,liolib,llex,lmathlib,lmem,loadlib,lobject,lopcodes,loslib,lparser,lstate," \
    "lstring,lstrlib,ltable,ltablib,ltm,lua,lundump,lutf8lib,lvm,lzio"


# The workloads' hottest small functions, excluded while the functions
# that call them stay tracked: the common way to leave hot helpers out.
# bzip2's three are 56% of its calls.
EXCLUDE_LEAVES = ",".join(["bench.calls." + f for f in (
    "cmp_u32", "fib", "leaf_mix", "leaf_rot", "leaf_step", "leaf_work", "sort_work")] + [
    "build.bench.real.bzip2." + f for f in (
        "blocksort.fallbackSimpleSort", "blocksort.mainGtU", "compress.bsW")])

# Sampled timing's rate in the "sampled" variant: 1 call in 16 timed.
SAMPLE = 16


def variants(args):
    v = [
        Variant("base", "base"),
        Variant("empty", "empty"),
        Variant("agg", "agg"),
        Variant("filter", "filter"),
        Variant("tracked", "rt"),
        Variant("excluded", "rt", env={"CODENSM_EXCLUDE": EXCLUDE_ALL}),
        # The same with the hook calls left in the code (no call-site
        # patching): what an excluded call costs where patching is off.
        Variant("excluded-hooks", "rt", env={"CODENSM_EXCLUDE": EXCLUDE_ALL,
                                             "CODENSM_PATCH": "off"}),
        # The -empty build with every hook call a NOP (bench/nop_hooks.py):
        # what -finstrument-functions' code shape costs with no hook ever
        # reached, the floor under "excluded".
        Variant("nop", "nop"),
        Variant("leaves-excluded", "rt", env={"CODENSM_EXCLUDE": EXCLUDE_LEAVES}),
        Variant("sampled", "rt", env={"CODENSM_SAMPLE": str(SAMPLE)}),
        Variant("gprof", "pg", cwd_tmp=True),
        Variant("tracked-static", "rts"),
        Variant("uftrace", "fi", wrap="uftrace"),  # last: the slow one
    ]
    if args.no_uftrace:
        v = [x for x in v if x.name != "uftrace"]
    return v


def invoke(build, workload, var, tmp, env0, argv_tail, stdout=None,
           stdin=None):
    binary = os.path.join(build, "bench", "%s-%s" % (workload, var.kind))
    env = dict(env0)
    env.update(var.env)
    argv = [binary] + argv_tail
    cwd = None
    udir = None
    if var.wrap == "uftrace":
        udir = tempfile.mkdtemp(dir=tmp, prefix="uftrace.")
        argv = ["uftrace", "record", "--no-pager", "-d", udir] + argv
    if var.cwd_tmp:
        cwd = tempfile.mkdtemp(dir=tmp, prefix="gprof.")
    try:
        return run_once(argv, env, stdout=stdout, stdin=stdin, cwd=cwd)
    finally:
        for d in (udir, cwd):
            if d:
                shutil.rmtree(d, ignore_errors=True)


# ---- workloads -----------------------------------------------------------

def calls_per_run(err):
    """Total calls from mini_agg's exit lines (one per thread)."""
    n = 0
    for line in err.splitlines():
        if line.startswith("mini_agg:"):
            n += int(line.split()[3])
    return n


class Synthetic:
    name = "synthetic"
    workload = "calls"

    def __init__(self, units):
        self.units = units
        self.expect = None

    def run(self, build, var, tmp, env):
        out = os.path.join(tmp, "calls.out")
        with open(out, "wb") as f:
            wall, cpu, err = invoke(build, "calls", var, tmp, env,
                                    ["-n", str(self.units)], stdout=f)
        text = open(out).read()
        if self.expect is None:
            self.expect = text
        if text != self.expect:
            raise RuntimeError("calls-%s printed %r, the baseline %r"
                               % (var.name, text, self.expect))
        return wall, cpu, err

    def fixed(self, build, var, tmp, env):
        """CPU time of a run with no work: the process's fixed cost (see
        Bzip2.fixed)."""
        return invoke(build, "calls", var, tmp, env, ["-n", "0"],
                      stdout=subprocess.DEVNULL)[1]


class Bzip2:
    """bzip2 -9 then -d on ~2 MB made of bzip2's own test files: the
    compressed bytes must equal the baseline's and the round trip the input."""
    name = "bzip2"
    workload = "bzip2"

    def __init__(self, build, tmp, copies):
        self.src = os.path.join(build, "bench", "real", "bzip2")
        # 376 bytes (its own words0): a run on it is nearly all start-up.
        self.tiny = os.path.join(self.src, "words0")
        self.input = os.path.join(tmp, "bzip2-%d.in" % copies)
        with open(self.input, "wb") as f:
            for _ in range(copies):
                for s in ("sample1.ref", "sample2.ref", "sample3.ref"):
                    with open(os.path.join(self.src, s), "rb") as g:
                        f.write(g.read())
        self.expect = None

    def pair(self, build, var, tmp, env, path):
        """bzip2 -9 of `path` into tmp/bzip2.z, then -d of that into
        tmp/bzip2.d: (wall s, cpu s, stderr) of the two together."""
        z = os.path.join(tmp, "bzip2.z")
        d = os.path.join(tmp, "bzip2.d")
        with open(z, "wb") as f:
            w1, c1, e1 = invoke(build, "bzip2", var, tmp, env,
                                ["-9", "-c", path], stdout=f)
        with open(d, "wb") as f:
            w2, c2, e2 = invoke(build, "bzip2", var, tmp, env,
                                ["-d", "-c", z], stdout=f)
        return w1 + w2, c1 + c2, e1 + e2

    def run(self, build, var, tmp, env):
        res = self.pair(build, var, tmp, env, self.input)
        z = os.path.join(tmp, "bzip2.z")
        d = os.path.join(tmp, "bzip2.d")
        zb = open(z, "rb").read()
        if self.expect is None:
            self.expect = zb
        if zb != self.expect:
            raise RuntimeError("bzip2-%s compressed differently from the "
                               "baseline" % var.name)
        if open(d, "rb").read() != open(self.input, "rb").read():
            raise RuntimeError("bzip2-%s did not round-trip" % var.name)
        return res

    def fixed(self, build, var, tmp, env):
        """CPU time of the same two commands on the tiny file: nearly all
        of it is the fixed cost of a process (loading, init, every function
        resolved once, the last flush at exit), which the per-call rows
        take out of each round's overhead."""
        return self.pair(build, var, tmp, env, self.tiny)[1]

    def upstream_test(self, build, var, tmp, env):
        """bzip2's own `make test`: three compressions and three
        decompressions compared with the shipped reference files."""
        for lvl, n in ((1, 1), (2, 2), (3, 3)):
            ref = os.path.join(self.src, "sample%d" % n)
            out = os.path.join(tmp, "t.out")
            with open(ref + ".ref", "rb") as fin, open(out, "wb") as f:
                invoke(build, "bzip2", var, tmp, env, ["-%d" % lvl],
                       stdout=f, stdin=fin)
            if open(out, "rb").read() != open(ref + ".bz2", "rb").read():
                return False
            with open(ref + ".bz2", "rb") as fin, open(out, "wb") as f:
                invoke(build, "bzip2", var, tmp, env, ["-d"], stdout=f,
                       stdin=fin)
            if open(out, "rb").read() != open(ref + ".ref", "rb").read():
                return False
        return True


class Lua:
    """The Lua 5.4 interpreter from Debian's source (tests/real/build.sh's
    builds) running bench/lua/work.lua: its output must equal the
    baseline's.  The interpreter's hot functions (luaV_execute, the table
    and string code) are the hard case for excluded calls."""
    name = "lua"
    workload = "lua"
    # The variants that need no other build of the interpreter.
    variants = ("base", "empty", "nop", "tracked", "excluded", "excluded-hooks")

    def __init__(self, reps=1):
        self.expect = None
        self.reps = reps  # work.lua's work done this many times per run

    def run(self, build, var, tmp, env):
        out = os.path.join(tmp, "lua.out")
        with open(out, "wb") as f:
            wall, cpu, err = invoke(build, "lua", var, tmp, env,
                                    [os.path.join(HERE, "lua", "work.lua"), str(self.reps)],
                                    stdout=f)
        text = open(out).read()
        if self.expect is None:
            self.expect = text
        if text != self.expect:
            raise RuntimeError("lua-%s printed %r, the baseline %r" % (var.name, text, self.expect))
        return wall, cpu, err

    def fixed(self, build, var, tmp, env):
        """CPU time of the interpreter running one statement: the
        process's fixed cost (see Bzip2.fixed)."""
        return invoke(build, "lua", var, tmp, env, ["-e", "local x = 1"],
                      stdout=subprocess.DEVNULL)[1]


def measure(workload, vars_, build, tmp, env, runs):
    """Alternate the variants `runs` times; {variant: {wall, cpu, calls}}."""
    res = {v.name: {"wall": [], "cpu": [], "fixed_cpu": [], "calls": 0}
           for v in vars_}
    # Each round starts one variant later, so that no variant always runs
    # right after the same one (a neighbour's burst, a cache or frequency
    # state left by the previous run); uftrace, the slow one, stays last.
    fast = [v for v in vars_ if v.wrap is None]
    slow = [v for v in vars_ if v.wrap is not None]
    for r in range(runs):
        k = r % len(fast)
        for v in fast[k:] + fast[:k] + slow:
            wall, cpu, err = workload.run(build, v, tmp, env)
            res[v.name]["wall"].append(wall)
            res[v.name]["cpu"].append(cpu)
            if v.name == "agg":
                res[v.name]["calls"] = calls_per_run(err)
            if hasattr(workload, "fixed") and v.wrap is None:
                res[v.name]["fixed_cpu"].append(workload.fixed(build, v, tmp, env))
        log("  %s round %d/%d: %s" % (workload.name, r + 1, runs, "  ".join(
            "%s %.3f" % (v.name, res[v.name]["cpu"][-1]) for v in vars_)))
    for v in res.values():
        v["wall_med"] = median(v["wall"])
        v["cpu_med"] = median(v["cpu"])
    return res


# The variants of the "excluded" target, measured again on their own with
# more rounds: their ratio is a few hundredths around 0.2, which five
# rounds of the full set cannot tell apart on a shared machine.
EXCLUDED_SET = ("base", "empty", "nop", "excluded")


def measure_excluded(workload, vars_, build, tmp, env, runs):
    """measure() of EXCLUDED_SET alone, `runs` rounds."""
    return measure(workload, [v for v in vars_ if v.name in EXCLUDED_SET],
                   build, tmp, env, runs)


# ---- threads -------------------------------------------------------------

def scaling(build, tmp, env, runs, units, rt):
    """Wall time of 1 and 2 threads doing the same work each; speed-up =
    2 * t1 / t2 (2.0 is perfect on 2 idle cores).  The result is the median
    of the speed-ups of each round (1 and 2 threads back to back); the
    best-of (the machine with the least interference) is kept beside it.
    Units are larger than in the single-thread rows so that the baseline's
    run is not mostly process and thread start-up."""
    vars_ = [Variant("base", "base"), Variant("empty", "empty"),
             Variant("agg", "agg")]
    if rt:
        vars_.append(Variant("tracked", "rt"))
    res = {}
    for r in range(runs):
        for v in vars_:
            for t in (1, 2):
                wall, cpu, _ = invoke(build, "calls", v, tmp, env,
                                      ["-t", str(t), "-n", str(units)])
                res.setdefault(v.name, {}).setdefault(t, []).append(wall)
    out = {}
    for name, by_t in res.items():
        w1, w2 = median(by_t[1]), median(by_t[2])
        paired = [2 * a / b for a, b in zip(by_t[1], by_t[2])]
        out[name] = {"wall_1": w1, "wall_2": w2, "speedup": median(paired),
                     "speedup_best": 2 * min(by_t[1]) / min(by_t[2]),
                     "runs_1": by_t[1], "runs_2": by_t[2]}
    return out


# ---- start-up, memory ----------------------------------------------------

def manyfn(build, kind, env, tmp, k, t, rounds=1):
    binary = os.path.join(build, "bench", "manyfn-" + kind)
    out = os.path.join(tmp, "manyfn.out")
    with open(out, "wb") as f:
        wall, cpu, _ = run_once([binary, str(k), str(t), str(rounds)], env,
                                stdout=f)
    line = open(out).read()
    rss = int(line.split("rss_kb=")[1].split()[0])
    first_ns = int(line.split("first_ns=")[1].split()[0])
    return wall, cpu, rss, first_ns


def fresh(env):
    """env, its spool emptied: the endpoint refuses every body, so each run
    spools its own, and the next would start by trying them all."""
    shutil.rmtree(env["CODENSM_SPOOL_DIR"], ignore_errors=True)
    return env


def startup(build, tmp, env, runs, bz):
    """Start-up = init (k=0, the process's wall time less the baseline's)
    plus resolution of each function once (the first calls of 1,999
    functions, timed inside the process, less the baseline's: a process's
    wall time scatters by more than 2,000 resolutions cost), cold (no
    symbol cache: the DWARF is read, as by a build's first run) and warm
    (the index read from the cache, as by every later run).  The disabled
    run (CODENSM_DISABLE=1) is what loading the runtime and its libraries
    costs before it does anything.  These runs have no API key: they count
    and never send, so loading libcurl and the post at exit are not in
    them; sending() measures those on the same bzip2 pair."""
    cold = dict(env, CODENSM_SYMBOL_CACHE="off")
    warm = dict(env, CODENSM_SYMBOL_CACHE=os.path.join(tmp, "symbols-startup"))
    kinds = [("base", "base", env, (0, 2000)), ("disabled", "rt", dict(env, CODENSM_DISABLE="1"), (0,))]
    for cache, e in (("cold", cold), ("warm", warm)):
        kinds += [("tracked " + cache, "rt", e, (0, 2000)),
                  ("excluded " + cache, "rt", dict(e, CODENSM_EXCLUDE=EXCLUDE_ALL), (0, 2000))]
    for k in (0, 2000):  # fill the warm cache
        manyfn(build, "rt", fresh(warm), tmp, k, 0)
    walls, firsts = {}, {}
    for r in range(3 * runs):
        for name, kind, e, ks in kinds:
            for k in ks:
                w, _, _, first_ns = manyfn(build, kind, fresh(e), tmp, k, 0)
                walls.setdefault((name, k), []).append(w)
                if k:
                    firsts.setdefault(name, []).append(first_ns)
    m = {key: median(v) for key, v in walls.items()}
    f = {name: median(v) for name, v in firsts.items()}
    res = {
        "load_ms": 1e3 * (m[("disabled", 0)] - m[("base", 0)]),
        "medians_ms": {"%s k=%d" % key: 1e3 * v for key, v in m.items()},
        "first_calls_ms": {name: v / 1e6 for name, v in f.items()},
    }
    for cache in ("cold", "warm"):
        res["init_ms_" + cache] = 1e3 * (m[("tracked " + cache, 0)] - m[("base", 0)])
        for sel in ("tracked", "excluded"):
            res["per_1000_%s_ms_%s" % (sel, cache)] = \
                (f["%s %s" % (sel, cache)] - f["base"]) / 1e6 * 1000 / 1999
    # The real program: bzip2 -9 and -d of its tiny file, so nearly all of
    # the run is start-up.
    tw = {"base": [], "cold": [], "warm": []}
    envs = {"base": env, "cold": cold, "warm": warm}
    for r in range(3 * runs):
        for kind in tw:
            tw[kind].append(bz.pair(build, Variant(kind, "base" if kind == "base" else "rt"),
                                    tmp, fresh(envs[kind]), bz.tiny)[0])
    for cache in ("cold", "warm"):
        res["bzip2_startup_ms_" + cache] = 1e3 * (median(tw[cache]) - median(tw["base"]))
    return res


def sending(build, tmp, env, runs, bz):
    """CPU that sending at exit adds to a short tracked process: the bzip2
    pair (two processes) on its tiny file, with a key and a live sink
    (the system's libcurl loaded at the first send, the body built and
    posted), over the same pair without a key (counting, not sending).
    The two alternate run after run, 3 x runs each, warm symbol cache;
    the medians of their CPU times (user + sys) are compared."""
    warm = dict(env, CODENSM_SYMBOL_CACHE=os.path.join(tmp, "symbols-send"))
    srv = start_sink()
    send = sink_env(warm, srv, 3600)
    bz.pair(build, Variant("send", "rt"), tmp, fresh(send), bz.tiny)  # fill the cache
    posts0 = Sink.posts
    cpu = {"none": [], "send": []}
    try:
        for r in range(3 * runs):
            for k, e in (("none", warm), ("send", send)):
                cpu[k].append(bz.pair(build, Variant(k, "rt"), tmp, fresh(e), bz.tiny)[1])
    finally:
        srv.shutdown()
    if Sink.posts - posts0 != 2 * 3 * runs:
        log("run.py: warning: %d posts from %d sending pairs" % (Sink.posts - posts0, 3 * runs))
    return {"bzip2_send_cpu_ms_system": 1e3 * (median(cpu["send"]) - median(cpu["none"])),
            "bzip2_pair_cpu_ms": {k: 1e3 * median(v) for k, v in cpu.items()},
            "send_runs": 3 * runs}


def memory(build, tmp, env):
    """RSS the runtime adds: per tracked function (200 -> 2000 functions
    called) and per thread (0 -> 16 threads alive), baseline subtracted."""
    def rss(kind, k, t):
        return min(manyfn(build, kind, env, tmp, k, t)[2] for _ in range(3))
    per_fn = ((rss("rt", 2000, 0) - rss("rt", 200, 0))
              - (rss("base", 2000, 0) - rss("base", 200, 0))) / 1800.0
    per_thread = ((rss("rt", 1, 16) - rss("rt", 1, 0))
                  - (rss("base", 1, 16) - rss("base", 1, 0))) / 16.0
    return {"rss_per_function_kb": per_fn, "rss_per_thread_kb": per_thread,
            "rss_rt_2000fn_kb": rss("rt", 2000, 0),
            "rss_base_2000fn_kb": rss("base", 2000, 0)}


# Resident memory per thread alive (bench/threads.c): an idle thread, a
# thread-per-connection server's typical one, a deep one, and how many of
# each are alive at once.
THREAD_CASES = (("none", 1000, "no tracked call"),
                ("shallow", 1000, "300 tracked calls 2 levels deep over 2 functions"),
                ("deep", 1000, "calls 50 levels deep over 200 functions"),
                ("shallow", 5000, "300 tracked calls 2 levels deep over 2 functions"))


def thread_memory(build, tmp, env, runs=3):
    """kB of RSS per thread alive, uninstrumented and with the runtime,
    for each of THREAD_CASES (the median of `runs` runs, alternating).
    The flusher runs every 0.5 s, so every block has been collected (and
    its snapshot taken) when the program measures."""
    e = dict(env, CODENSM_FLUSH_INTERVAL="0.5")
    out = []
    for kind, n, what in THREAD_CASES:
        per = {"base": [], "rt": []}
        for _ in range(runs):
            for v in ("base", "rt"):
                binary = os.path.join(build, "bench", "threads-" + v)
                p = subprocess.run([binary, kind, str(n)], env=fresh(e),
                                   capture_output=True, text=True, check=True)
                per[v].append(float(p.stdout.split("per_thread_kb=")[1].split()[0]))
        base, rt = median(per["base"]), median(per["rt"])
        out.append({"kind": kind, "threads": n, "what": what, "base_kb": base,
                    "rt_kb": rt, "target_kb": 2 * base + 8})
        log("  %s x %d: %.1f kB per thread uninstrumented, %.1f kB with the runtime"
            % (kind, n, base, rt))
    return out


class Sink(http.server.BaseHTTPRequestHandler):
    """A stand-in ingest endpoint: takes every POST, counts it, keeps the
    last few bodies."""
    posts = 0
    bytes = 0
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        Sink.posts += 1
        Sink.bytes += n
        Sink.bodies = (Sink.bodies + [body])[-64:]
        body = b'{"ok":true,"functions":0}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def start_sink():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    Sink.posts, Sink.bytes, Sink.bodies = 0, 0, []
    return srv


def sink_env(env, srv, interval):
    e = dict(env)
    e["CODENSM_API_KEY"] = "cnsm_bench"
    e["CODENSM_ENDPOINT"] = "http://127.0.0.1:%d/codensm/ingest" % srv.server_port
    e["CODENSM_FLUSH_INTERVAL"] = str(interval)
    return e


def check_selection(build, tmp, env):
    """What the tracked and excluded runs really select: one synthetic unit
    sent to a local sink at exit; tracked must report the workload's
    functions with mini_agg's call count, excluded none."""
    out = {}
    for name, extra in (("tracked", {}), ("excluded", {"CODENSM_EXCLUDE": EXCLUDE_ALL})):
        srv = start_sink()
        e = sink_env(env, srv, 3600)
        e.update(extra)
        run_once([os.path.join(build, "bench", "calls-rt"), "-n", "1"], e)
        srv.shutdown()
        fns, calls = set(), 0
        for body in Sink.bodies:
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            for f in doc.get("functions", []):
                if f.get("calls"):
                    fns.add(f["name"])
                    calls += f["calls"]
        out[name] = {"functions": sorted(fns), "calls": calls,
                     "posts": Sink.posts}
    return out


def steady_state(build, tmp, env, seconds):
    """Run the synthetic workload for `seconds` with a flush every second to
    a local sink; sample RSS every 0.2 s.  Growth is compared between the
    end of the third second and the end: the runtime loads libcurl (and its
    TLS libraries, ~2.5 MB) at its first send, around the second second,
    once; what matters is that nothing grows after that."""
    srv = start_sink()
    e = sink_env(env, srv, 1)
    binary = os.path.join(build, "bench", "calls-rt")
    p = subprocess.Popen([binary, "-t", "2", "-n", "100000"], env=e,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples = []
    t0 = time.time()
    while time.time() - t0 < seconds and p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        samples.append((round(time.time() - t0, 2),
                                        int(line.split()[1])))
        except OSError:
            break
        time.sleep(0.2)
    p.kill()
    p.wait()
    srv.shutdown()
    after2 = [kb for t, kb in samples if t >= 3.0]
    return {"seconds": seconds, "samples": samples,
            "rss_at_3s_kb": after2[0] if after2 else None,
            "rss_end_kb": samples[-1][1] if samples else None,
            "rss_max_kb": max(kb for _, kb in samples) if samples else None,
            "growth_kb": (samples[-1][1] - after2[0]) if after2 else None,
            "posts": Sink.posts, "post_bytes": Sink.bytes}


def instructions(build, tmp, env):
    """Instructions per call under callgrind: exact and immune to
    neighbours, unlike time (rdtsc latency is not in it).  Each variant runs
    one and two synthetic units, and the difference is divided by one
    unit's calls, so the runtime's start-up and exit (loading, DWARF, the
    final flush) are not spread over the calls; the baseline's own
    instructions per call are subtracted."""
    runs = [("base", "base", {}), ("empty", "empty", {}), ("agg", "agg", {}),
            ("tracked", "rt", {}), ("excluded", "rt", {"CODENSM_EXCLUDE": EXCLUDE_ALL}),
            ("excluded, hooks kept", "rt", {"CODENSM_EXCLUDE": EXCLUDE_ALL,
                                            "CODENSM_PATCH": "off"}),
            ("excluded under tracked callers", "rt", {"CODENSM_EXCLUDE": EXCLUDE_LEAVES}),
            # Under valgrind every call lasts ~50 times longer, so which
            # functions stay under the 1 us threshold depended on the
            # machine's load (132 or 145 instructions a call from one run
            # to the next); with 1 ms the short ones are sampled every time.
            ("sampled", "rt", {"CODENSM_SAMPLE": str(SAMPLE),
                               "CODENSM_SAMPLE_BELOW_NS": "1000000"})]
    total, calls = {}, 0
    for name, kind, extra in runs:
        for units in (1, 2):
            e = dict(env)
            e.update(extra)
            # --smc-check=all: valgrind then sees the hook calls the
            # runtime patches out of the program's (file-backed) code.
            _, _, err = run_once(["valgrind", "--tool=callgrind", "--smc-check=all",
                                  "--callgrind-out-file=/dev/null",
                                  os.path.join(build, "bench", "calls-" + kind),
                                  "-n", str(units)], fresh(e))
            for line in err.splitlines():
                if "Collected :" in line:
                    total[name, units] = int(line.split()[-1])
                if line.startswith("mini_agg:") and units == 1:
                    calls += int(line.split()[3])
    if not calls:
        return {}
    unit = {name: total[name, 2] - total[name, 1] for name, _, _ in runs}
    out = {name: (unit[name] - unit["base"]) / calls for name, _, _ in runs if name != "base"}
    out["calls"] = calls
    return out


def hook_instructions_left(build, tmp, env, bz):
    """Of the instructions the hook calls add, the share an excluded call
    still executes, per workload: exact under callgrind, where time on a
    shared 2-core VM cannot resolve a few percent of bzip2's run.  Each of
    the NOP build, the empty hooks and the runtime with everything excluded
    runs a small and a large input; the difference takes each process's
    fixed cost (loading, naming, the start-up sites' patching) out.  Then
    (excluded - NOP build) / (empty hooks - NOP build): 0 when the patched
    program runs exactly the NOP build's instructions; what is left is the
    sites not patched (or still waiting for their batch) and the patching
    of sites only the larger input reaches.  Lua's work repeats exactly
    since its hash seed, string cache and sort pivot are fixed in its build
    (tests/real/build.sh)."""
    bzin = []
    for copies in (1, 2):
        path = os.path.join(tmp, "bzip2-%d.in" % copies)
        with open(path, "wb") as f:
            for _ in range(copies):
                for name in ("sample1.ref", "sample2.ref", "sample3.ref"):
                    with open(os.path.join(bz.src, name), "rb") as g:
                        f.write(g.read())
        bzin.append(path)
    work = {
        "synthetic": ("calls", (["-n", "1"], ["-n", "2"])),
        "bzip2": ("bzip2", (["-9", "-c", bzin[0]], ["-9", "-c", bzin[1]])),
        "lua": ("lua", (["-e", "local x = 1"], [os.path.join(HERE, "lua", "work.lua")])),
    }
    variants = (("nop", "nop", {}), ("empty", "empty", {}),
                ("excluded", "rt", {"CODENSM_EXCLUDE": EXCLUDE_ALL}))
    # Addresses fixed (no ASLR), so that a program whose work follows
    # malloc's addresses repeats its count.
    norand = ["setarch", "-R"] if shutil.which("setarch") else []
    out = {}
    for w, (prog, (small, large)) in work.items():
        if not os.path.exists(os.path.join(build, "bench", "%s-nop" % prog)):
            continue
        grew = {}
        for name, kind, extra in variants:
            e = dict(env)
            e.update(extra)
            binary = os.path.join(build, "bench", "%s-%s" % (prog, kind))
            # once outside valgrind first: the symbol cache (and the tail
            # exits kept beside it) then holds what both runs reach, as a
            # user's does after a build's first run
            run_once([binary] + large, fresh(e), stdout=subprocess.DEVNULL)
            total = []
            for argv in (small, large):
                # --smc-check=all: valgrind then runs the code as patched
                _, _, err = run_once(norand + ["valgrind", "--tool=callgrind",
                                               "--smc-check=all",
                                               "--callgrind-out-file=/dev/null", binary]
                                     + argv, fresh(e), stdout=subprocess.DEVNULL)
                total += [int(line.split()[-1]) for line in err.splitlines()
                          if "Collected :" in line]
            if len(total) == 2:
                grew[name] = total[1] - total[0]
        if len(grew) == 3 and grew["empty"] > grew["nop"]:
            out[w] = dict(grew, left=(grew["excluded"] - grew["nop"]) /
                          (grew["empty"] - grew["nop"]))
    return out


def cache_misses(build, tmp, env, bz):
    """Data-cache misses per call under cachegrind's simulation of one core
    of this machine (32 kB 8-way L1d, 512 kB 8-way L2 as the last level),
    bzip2 compressing the bench input: do the hooks' memory accesses miss
    where the program's working set is large?  Each variant's run on the
    376-byte input is subtracted (start-up and exit), then the baseline's
    misses; calls come from mini_agg's count."""
    sim = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", "--smc-check=all",
           "--cachegrind-out-file=/dev/null", "--D1=32768,8,64",
           "--I1=32768,8,64", "--LL=524288,8,64"]
    runs = [("base", "base", {}), ("empty", "empty", {}), ("agg", "agg", {}),
            ("tracked", "rt", {}), ("excluded", "rt", {"CODENSM_EXCLUDE": EXCLUDE_ALL})]
    got, calls = {}, {}

    def one(name, kind, extra, path):
        e = dict(env)
        e.update(extra)
        _, _, err = run_once(sim + [os.path.join(build, "bench", "bzip2-" + kind),
                                    "-9", "-c", path], fresh(e))
        out = {}
        for line in err.splitlines():
            f = line.split()
            if len(f) >= 4 and f[1] in ("I", "D1", "LLd") and f[2] in ("refs:", "misses:"):
                out[f[1]] = int(f[3].replace(",", ""))
            if line.startswith("mini_agg:"):
                calls[path] = int(line.split()[3])
        return out
    for name, kind, extra in runs:
        big = one(name, kind, extra, bz.input)
        tiny = one(name, kind, extra, bz.tiny)
        got[name] = {k: big[k] - tiny[k] for k in big}
    n = calls.get(bz.input, 0) - calls.get(bz.tiny, 0)
    if n <= 0:
        return {}
    out = {"calls": n}
    for name, _, _ in runs[1:]:
        out[name] = {k: (got[name][k] - got["base"][k]) / n for k in got[name]}
    return out


def payload_rate(build):
    binary = os.path.join(build, "bench", "payload_rate")
    out = subprocess.run([binary], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def sink_functions(bodies):
    """{name: {calls, total_ms, self_ms}} summed over the sink's bodies."""
    out = {}
    for body in bodies:
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        for f in doc.get("functions", []):
            e = out.setdefault(f["name"], {"calls": 0, "total_ms": 0.0,
                                           "self_ms": 0.0})
            e["calls"] += f.get("calls", 0)
            e["total_ms"] += f.get("total_ms", 0.0)
            e["self_ms"] += f.get("self_ms", 0.0)
    return out


def sampled_accuracy(build, tmp, env, bz, runs):
    """bzip2 compressing, sent to a local sink at exit, alternately with
    every call timed and with 1 in SAMPLE: the calls must be identical,
    and the mean time per call of the busiest leaf functions (no tracked
    callee; a caller's time also holds its callees' hooks, which cost less
    when they are not timed, so callers are not comparable) is reported for
    both, median over `runs` pairs of runs."""
    means = {"exact": [], "sampled": []}
    calls = {}
    for r in range(runs):
        for mode, extra in (("exact", {}), ("sampled", {"CODENSM_SAMPLE": str(SAMPLE)})):
            srv = start_sink()
            e = sink_env(env, srv, 3600)
            e.update(extra)
            with open(os.path.join(tmp, "acc.z"), "wb") as f:
                run_once([os.path.join(build, "bench", "bzip2-rt"), "-9", "-c",
                          bz.input], e, stdout=f)
            srv.shutdown()
            fns = sink_functions(Sink.bodies)
            calls.setdefault(mode, {k: v["calls"] for k, v in fns.items()})
            means[mode].append(fns)
    first = means["exact"][0]
    leaves = sorted((k for k, v in first.items()
                     if v["calls"] >= 100000 and v["total_ms"] > 0 and
                     v["self_ms"] >= 0.999 * v["total_ms"]),
                    key=lambda k: -first[k]["total_ms"])[:3]

    def ns_per_call(mode, k):
        return median([1e6 * run[k]["total_ms"] / run[k]["calls"]
                       for run in means[mode] if run.get(k, {}).get("calls")])
    return {"calls_identical": calls["exact"] == calls["sampled"],
            "functions": len(calls["exact"]), "runs": runs,
            "leaves": [{"name": k, "calls": first[k]["calls"],
                        "exact_ns": ns_per_call("exact", k),
                        "sampled_ns": ns_per_call("sampled", k)} for k in leaves]}


# ---- report --------------------------------------------------------------

# The server under load (tests/load/run_load.py runs it; `make test` asserts
# only what it stores).  The floor is what a 2-core machine shared with a
# full `make test` held in the README's load table, with room for noise.
LOAD_FLOOR_RPS = 1000
LOAD_CEILING_P99_MS = 1000


def load(build, seconds, conns):
    """The steady and kill -9 runs of tests/load/run_load.py against the
    built server: what the clients saw, and whether the store still held
    exactly what was acknowledged (its assertions, collected)."""
    sys.path.insert(0, os.path.join(REPO, "tests", "load"))
    os.environ["CODENSM_BUILD"] = build
    import run_load
    out = {}
    for label, kill_at in (("steady", None), ("kill -9", seconds / 3)):
        failed = []

        def check(ok, what, diag=None):
            if not ok:
                failed.append("%s%s" % (what, ": %s" % diag if diag else ""))
            return ok
        fig = run_load.run(label, seconds, conns, kill_at=kill_at, tap=check,
                           note=lambda line: log("load: " + line))
        fig["integrity_failures"] = failed
        out[label] = fig
        log("load, %s: %.0f requests/s, p50 %.1f ms, p99 %.1f ms%s" % (
            label, fig["requests_per_s"], fig["p50_ms"] or 0, fig["p99_ms"] or 0,
            "; FAILED: " + "; ".join(failed) if failed else ""))
    return out


# ---- probes ----------------------------------------------------------------

def probe_costs(build, tmp, env, runs, calls=2000000):
    """ns per call of a tracked, an excluded and a probed function
    (bench/probes.c), with no probe, with 10 probes on other functions, and
    with one probe of each instrument type on the probed one (event
    `return`; `incr` on `call` and `end` too); medians of `runs`
    interleaved runs.  A probe's per-event cost is its target_ns less the
    unprobed target_ns.  "ratios": a call with 10 probes on others over
    the same call with none, per run (the two ran back to back), then the
    median: robust to the machine changing speed between runs."""
    binary = os.path.join(build, "bench", "probes-rt")
    lastmod = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def spec(target, type_, event="return"):
        return {"target": "bench.probes." + target, "lifespan": 60, "lastmodified": lastmod,
                "instrument": {"type": type_, "name": type_, "event": event}}
    setups = {"none": {},
              "10 others": {"o%d" % i: spec("bench_other_%d" % i, "incr") for i in range(10)}}
    for t in ("incr", "hist", "stack", "log", "tally"):
        setups[t] = {t: spec("bench_target", t)}
    setups["incr on call"] = {"c": spec("bench_target", "incr", "call")}
    setups["incr on end"] = {"e": spec("bench_target", "incr", "end")}
    setups["incr on excluded"] = {"x": spec("bench_excluded", "incr")}
    out = {k: {"tracked": [], "excluded": [], "target": []} for k in setups}
    for _ in range(runs):
        for name, specs in setups.items():
            e = dict(env)
            e["CODENSM_EXCLUDE"] = "bench.probes.bench_excluded"
            if specs:
                path = os.path.join(tmp, "probes.json")
                with open(path, "w") as f:
                    json.dump(specs, f)
                e["CODENSM_PROBES"] = path
            res = os.path.join(tmp, "probes.out")
            with open(res, "wb") as f:
                run_once([binary, str(calls)], e, stdout=f)
            line = open(res).read()
            for k in ("tracked", "excluded", "target"):
                out[name][k].append(float(line.split(k + "_ns=")[1].split()[0]))
    table = {name: {k: round(median(v), 2) for k, v in d.items()} for name, d in out.items()}
    for name, d in table.items():
        log("probes: %-17s tracked %6.2f ns  excluded %6.2f ns  target %7.2f ns"
            % (name, d["tracked"], d["excluded"], d["target"]))
    table["ratios"] = {}
    for k in ("tracked", "excluded"):
        rs = sorted(a / b for a, b in zip(out["10 others"][k], out["none"][k]) if b > 0)
        table["ratios"][k] = {"median": round(median(rs), 3),
                              "min": round(rs[0], 3), "max": round(rs[-1], 3)}
        log("probes: %s, 10 probes on others / none, per run: median %.3f (%.3f-%.3f)"
            % (k, median(rs), rs[0], rs[-1]))
    return table


# ---- a real server: redis ------------------------------------------------

# Redis's command dispatch, tracked; everything else excluded.
REDIS_INCLUDE = ",".join([
    "server.call", "server.processCommand", "t_string.setCommand", "t_string.getCommand",
    "t_string.incrCommand", "t_list.lpushCommand"])
REDIS_TESTS = "set,get,incr,lpush"


def redis_variants():
    """(name, build kind, env) of each redis-server run compared."""
    return [("base", "base", {}),
            ("dispatch", "rt", {"CODENSM_INCLUDE": REDIS_INCLUDE}),
            # A prefix no function has: every function excluded.
            ("excluded", "rt", {"CODENSM_INCLUDE": "no-such-function"}),
            ("dispatch, hooks kept", "rt", {"CODENSM_INCLUDE": REDIS_INCLUDE,
                                            "CODENSM_PATCH": "off"})]


def proc_cpu(pid):
    """utime + stime of process `pid` (all its threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_once(build, kind, env, tmp, requests):
    """Server CPU seconds per command of one redis-benchmark load on a
    fresh redis-server (persistence off), and the commands run."""
    server = os.path.join(build, "bench", "redis-%s" % kind, "src", "redis-server")
    client = os.path.join(build, "bench", "redis-base", "src", "redis-benchmark")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", tmp, "--logfile", ""],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server-%s did not listen on %d" % (kind, port))
        cpu0 = proc_cpu(p.pid)
        subprocess.run([client, "-p", str(port), "-n", str(requests), "-c", "8", "-q",
                        "-t", REDIS_TESTS], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        cpu1 = proc_cpu(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    commands = requests * len(REDIS_TESTS.split(","))
    return (cpu1 - cpu0) / commands


def redis_bench(build, tmp, env, runs, requests):
    """Each variant `runs` times, alternating, each round starting one
    variant later; per-round ratios of CPU per command to the plain
    build's, then their median."""
    vs = redis_variants()
    res = {name: [] for name, _, _ in vs}
    for r in range(runs):
        k = r % len(vs)
        for name, kind, extra in vs[k:] + vs[:k]:
            e = dict(env)
            e.update(extra)
            res[name].append(redis_once(build, kind, e, tmp, requests))
        log("  redis round %d/%d: %s" % (r + 1, runs, "  ".join(
            "%s %.2f us" % (n, 1e6 * res[n][-1]) for n, _, _ in vs)))
    out = {"requests": requests, "tests": REDIS_TESTS, "include": REDIS_INCLUDE,
           "cpu_per_command": res}
    for name, _, _ in vs[1:]:
        rs = [ratio(a, b) for a, b in zip(res[name], res["base"])]
        out[name + "/base"] = median(rs)
        out[name + "/base rounds"] = rs
    return out


def ratio(num, den):
    return num / den if den > 0 else float("inf")


PAIRS = ("tracked/agg", "excluded/empty", "excluded-hooks/empty", "nop/empty", "uftrace/tracked",
         "gprof/tracked",
         "tracked-static/tracked", "sampled/empty", "sampled/tracked",
         "leaves-excluded/tracked", "filter/empty", "excluded/filter")
# Also computed per call, where the workload times each variant's fixed
# cost in the same round: each overhead less its process's fixed cost.
PER_CALL_PAIRS = ("tracked/agg", "excluded/empty", "excluded-hooks/empty", "nop/empty",
                  "excluded/filter")


def paired_ratios(m):
    """Ratios of overheads computed within each round (the variants of a
    round ran back to back, so they saw the same machine), then the median
    over rounds: robust to the machine changing speed between rounds,
    which medians of raw times are not on a shared host."""
    out = {}
    n = len(m["base"]["cpu"])
    for pair in PAIRS:
        a, b = pair.split("/")
        if a not in m or b not in m:
            continue
        rs = []
        for r in range(n):
            base = m["base"]["cpu"][r]
            rs.append(ratio(m[a]["cpu"][r] - base, m[b]["cpu"][r] - base))
        out[pair] = median(rs)
        out[pair + " rounds"] = rs
    for pair in PER_CALL_PAIRS:
        a, b = pair.split("/")
        if a not in m or b not in m or len(m[a]["fixed_cpu"]) != n or \
                len(m[b]["fixed_cpu"]) != n or len(m["base"]["fixed_cpu"]) != n:
            continue
        rs = []
        for r in range(n):
            def per_call(v):
                return (m[v]["cpu"][r] - m["base"]["cpu"][r]) - \
                    (m[v]["fixed_cpu"][r] - m["base"]["fixed_cpu"][r])
            rs.append(ratio(per_call(a), per_call(b)))
        out[pair + " per call"] = median(rs)
        out[pair + " per call rounds"] = rs
    return out


def ratios_of(R):
    """paired_ratios of each workload, the excluded target's pairs (and
    their per-call forms) taken from its own longer measurement when the
    run has one."""
    out = {w: paired_ratios(m) for w, m in R["overhead"].items()}
    for w, m in R.get("excluded", {}).items():
        for k, v in paired_ratios(m).items():
            if k.startswith(("excluded/empty", "nop/empty")):
                out.setdefault(w, {})[k] = v
    return out


# What each row of the table means for a user, by the start of the row's
# first column once the workload ("synthetic: ", "bzip2: ") is taken off.
MEANINGS = (
    ("tracked overhead / mini aggregator", "a tracked call (count, total, self and max "
     "time, histogram, caller→callee pair, errors) costs about what bare exact timing costs"),
    ("excluded overhead / empty hooks", "a function you exclude costs a fraction of "
     "the compiler's hook call: its calls are patched out of the running code"),
    ("excluded, hooks kept", "CODENSM_PATCH=off: a function you exclude costs about "
     "what the compiler's hook call itself costs"),
    ("hook-call instructions", "exact where time is too noisy: how much of the hook "
     "calls an excluded function still runs once its calls are patched"),
    ("hook calls as NOPs", "what -finstrument-functions' code shape costs with no hook "
     "ever called: the floor under an excluded function, which no patching removes"),
    ("redis: CPU per command", "a real server tracking its command dispatch: what each command costs "
     "in CPU against the uninstrumented build"),
    ("tracked / mini aggregator, per call", "the same, each process's fixed start-up "
     "and exit cost taken out"),
    ("excluded / empty hooks, per call", "the same, each process's fixed cost taken out"),
    ("excluded / mini filter", "an excluded call against the least a per-call "
     "exclusion check can do"),
    ("mini filter", "the floor for any hook that decides per call"),
    ("uftrace", "full tracing costs many times what counting costs"),
    ("gprof", "gprof counts calls but times none; this runtime times each call"),
    ("tracked static", "linking the runtime statically changes nothing measurable"),
    ("hottest leaves excluded", "excluding a program's hottest small helpers while "
     "their callers stay tracked is the cheapest way to cut the cost"),
    ("sampled timing (1 in", "CODENSM_SAMPLE=16: counts stay exact, timing costs less"),
    ("2 threads vs 1", "threads do not contend: no lock, no shared cache line "
     "written on the hot path"),
    ("instructions per call", "deterministic, unlike time: what to watch when "
     "changing the hooks"),
    ("L1d and L2 misses", "the hooks' data stays in cache beside the program's"),
    ("start-up", "what a process pays once to name its functions"),
    ("loading the runtime", "what any process linked with the runtime pays"),
    ("a process that calls none", "the fixed cost of a short process that tracks nothing"),
    ("sending at exit", "what a process that has something to send pays once: "
     "libcurl loaded, the body built and posted"),
    ("resolution", "the first call of each function, once per process"),
    ("probes: a ", "a function without a probe pays nothing measurable for the probes "
     "armed on others"),
    ("probes: what one probed call", "the price of looking closer, paid only by the "
     "probed function while its probe lives"),
    ("probes: an excluded call with", "an excluded function can be probed; the probe "
     "puts its calls back on the hooks"),
    ("RSS per tracked function", "memory follows the functions you track"),
    ("RSS per thread", "memory follows the threads alive and what each of them does"),
    ("RSS growth", "memory does not grow with time"),
    ("payload build", "the flusher's cost, on its own thread"),
    ("sampled timing on bzip2", "sampled timing keeps counts exact and times "
     "close to exact mode"),
    ("codensm-server, steady", "what one server process with its SQLite file takes "
     "on a 2-core machine"),
    ("codensm-server, killed", "a server killed mid-load loses nothing it answered 200, "
     "and clients' resends count once"),
    ("scale: ingest on PostgreSQL, 2 and 3", "servers are interchangeable: more of them "
     "help where the database has cores to spare (docs/deploy.md's capacity model)"),
    ("scale: ingest, PostgreSQL 1 server / SQLite", "what a shared database costs one "
     "server against its own file"),
    ("scale: ingest", "docs/deploy.md turns these into a capacity model"),
    ("scale: dashboard", "how the heaviest view grows with the functions reporting "
     "each minute"),
    ("scale: PostgreSQL rows", "the PostgreSQL half did not run"),
)


def meaning(what):
    w = what.split(": ", 1)[1] if what.startswith(("synthetic: ", "bzip2: ", "lua: ")) else what
    for start, text in MEANINGS:
        if w.startswith(start):
            return text
    return ""


DOC = os.path.join(REPO, "docs", "performance.md")
DOC_BEGIN, DOC_END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_doc(path, report, source):
    """Put one run's table into the doc between its markers; the rest of the
    doc (method, how to read it) is left as it is."""
    with open(path) as f:
        doc = f.read()
    a, b = doc.find(DOC_BEGIN), doc.find(DOC_END)
    if a < 0 or b < a:
        raise SystemExit("run.py: '%s' has no %s ... %s markers" % (path, DOC_BEGIN, DOC_END))
    body = "%s\n_Written by `bench/run.py` from [%s](%s)._\n\n%s\n" % (
        DOC_BEGIN, os.path.basename(source),
        os.path.relpath(source, os.path.dirname(path)), report)
    with open(path, "w") as f:
        f.write(doc[:a] + body + doc[b:])


def build_report(R):
    lines = []
    add = lines.append
    add("Machine: %s, %s cores; %s%s" % (
        R["machine"]["cpu"], R["machine"]["cores"], R["machine"]["kernel"],
        "; the runtime's clock: " + R["machine"]["clock"]
        if R["machine"].get("clock") else ""))
    add("Date: %s; %d runs per variant, median; single-thread rows in CPU "
        "time (user+sys), scaling in wall time; load average %s at the start, "
        "%s at the end." % (R["date"], R["runs"], "/".join(R["loadavg_start"]),
                            "/".join(R["loadavg_end"])))
    add("")
    add("Overhead over the baseline per run (median of the per-round "
        "differences) and per call; ratios below are medians of per-round "
        "ratios.")
    add("")
    add("| workload | calls/run | base s | empty | mini agg | mini filter | tracked | "
        "excluded | excluded, hooks kept | hook calls as NOPs | leaves excluded | "
        "sampled (1 in %d) | uftrace | gprof | tracked (static) |" % SAMPLE)
    add("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for w in ("synthetic", "bzip2", "lua"):
        m = R["overhead"].get(w)
        if not m:
            continue
        base = m["base"]["cpu_med"]
        calls = m["agg"]["calls"] if "agg" in m else 0

        def cell(name):
            if name not in m:
                return "-"
            d = median([x - b for x, b in zip(m[name]["cpu"], m["base"]["cpu"])])
            per = " (%.1f ns/call)" % (1e9 * d / calls) if calls else ""
            return "+%.3f s%s" % (d, per)
        add("| %s | %s | %.3f | %s |" % (
            w, "{:,}".format(calls), base, " | ".join(cell(n) for n in (
                "empty", "agg", "filter", "tracked", "excluded", "excluded-hooks",
                "nop", "leaves-excluded", "sampled",
                "uftrace", "gprof", "tracked-static"))))
    add("")
    for w in ("synthetic", "bzip2", "lua"):
        m = R["overhead"].get(w)
        if m and "empty" in m:
            b = m["base"]["cpu"]
            d = median([x - y for x, y in zip(m["empty"]["cpu"], b)])
            add("%s: the baseline's rounds ran from %.3f to %.3f s; the "
                "empty hooks added %.3f s." % (w, min(b), max(b), d))
    add("")
    add("| what | target | measured | met | what it means for you |")
    add("|---|---|---|---|---|")

    def row(what, target, value, ok):
        add("| %s | %s | %s | %s | %s |" % (
            what, target, value, "-" if ok is None else ("yes" if ok else "**no**"),
            meaning(what)))
    for w in ("synthetic", "bzip2", "lua"):
        m = R["overhead"].get(w)
        if not m or "excluded" not in m:
            continue
        rr = R["ratios"][w]
        if "tracked/agg" in rr:
            r1 = rr["tracked/agg"]
            row("%s: tracked overhead / mini aggregator's" % w, "<= 1.15",
                "%.2f%s" % (r1, spread(rr["tracked/agg rounds"])), r1 <= 1.15)
        r2 = rr["excluded/empty"]
        size = {"synthetic": "%s units" % R.get("excluded_units", R.get("units")),
                "bzip2": "%s copies" % R.get("excluded_bzip2_copies", R.get("bzip2_copies")),
                "lua": "work.lua x%s" % R.get("excluded_lua_reps", 1)}[w]
        alone = " (%d rounds of the baseline, empty hooks, NOPs and excluded alone, %s)" % (
            len(rr["excluded/empty rounds"]), size) if w in R.get("excluded", {}) else ""
        row("%s: excluded overhead / empty hooks'%s" % (w, alone), "<= 0.2",
            "%.2f%s" % (r2, spread(rr["excluded/empty rounds"])), r2 <= 0.2)
        if "nop/empty" in rr:
            r3 = rr["nop/empty"]
            row("%s: hook calls as NOPs (the code's shape alone), overhead / empty hooks'" % w,
                "(reported)", "%.2f%s; excluded beyond it: %.2f" % (
                    r3, spread(rr["nop/empty rounds"]), rr["excluded/empty"] - r3), None)
        left = R.get("hooks_left", {}).get(w)
        if left:
            row("%s: hook-call instructions an excluded call still executes (callgrind; "
                "excluded less hook calls as NOPs, over empty hooks less hook calls as "
                "NOPs; each process's fixed cost taken out)" % w, "(reported)",
                "%.3f (%s of %s)" % (left["left"], "{:,}".format(left["excluded"] - left["nop"]),
                                     "{:,}".format(left["empty"] - left["nop"])), None)
        if "excluded-hooks/empty" in rr:
            r2 = rr["excluded-hooks/empty"]
            row("%s: excluded, hooks kept (CODENSM_PATCH=off), overhead / empty hooks'" % w,
                "<= 1.3", "%.2f%s" % (r2, spread(rr["excluded-hooks/empty rounds"])),
                r2 <= 1.3)
        for pair, what in (("tracked/agg", "tracked / mini aggregator"),
                           ("excluded/empty", "excluded / empty hooks"),
                           ("excluded-hooks/empty", "excluded, hooks kept / empty hooks"),
                           ("nop/empty", "hook calls as NOPs / empty hooks"),
                           ("excluded/filter", "excluded / mini filter")):
            if pair + " per call" in rr:
                row("%s: %s, per call (each process's fixed cost, timed on %s in the "
                    "same round, taken out)" % (w, what, {
                        "bzip2": "a 376-byte input", "synthetic": "a run of no units",
                        "lua": "a one-statement chunk"}[w]),
                    "(reported)", "%.2f%s" % (rr[pair + " per call"],
                                              spread(rr[pair + " per call rounds"])), None)
        if "filter/empty" in rr:
            row("%s: mini filter (one table probe per call) / empty hooks" % w,
                "(reported)", "%.2f" % rr["filter/empty"], None)
        if "uftrace/tracked" in rr:
            r3 = rr["uftrace/tracked"]
            row("%s: uftrace overhead / tracked" % w, ">= 5", "%.1f" % r3,
                r3 >= 5)
        if "gprof/tracked" in rr:
            row("%s: gprof overhead / tracked" % w, "(reported)",
                "%.2f" % rr["gprof/tracked"], None)
        if "tracked-static/tracked" in rr:
            row("%s: tracked static / tracked shared (overheads)" % w,
                "(reported)", "%.2f" % rr["tracked-static/tracked"], None)
        if "leaves-excluded/tracked" in rr:
            row("%s: hottest leaves excluded, callers tracked / all tracked (overheads)" % w,
                "(reported)", "%.2f" % rr["leaves-excluded/tracked"], None)
        if "sampled/empty" in rr:
            row("%s: sampled timing (1 in %d) overhead / empty hooks'" % (w, SAMPLE),
                "(optional mode, reported)", "%.2f" % rr["sampled/empty"], None)
            row("%s: sampled timing (1 in %d) overhead / tracked" % (w, SAMPLE),
                "(reported)", "%.2f" % rr["sampled/tracked"], None)
    s = R.get("scaling", {})
    for name in ("tracked", "agg", "empty", "base"):
        if name in s:
            sp = s[name]["speedup"]
            row("2 threads vs 1, same work each (%s)" % name,
                ">= 1.8" if name == "tracked" else "(reference)",
                "%.2fx (best runs: %.2fx)" % (sp, s[name]["speedup_best"]),
                sp >= 1.8 if name == "tracked" else None)
    if "tracked" in s and "base" in s:
        rel = s["tracked"]["speedup"] / s["base"]["speedup"]
        row("2 threads vs 1, tracked relative to the baseline's own speed-up",
            "(reported: ~1.0 = the runtime costs no scaling; the absolute "
            "row needs 2 idle cores, see base)", "%.2f" % rel, None)
    ins = R.get("instructions")
    if ins and ins.get("calls"):
        row("instructions per call (callgrind, synthetic)", "(reported)",
            ", ".join("%s %.0f" % (k, ins[k]) for k in
                      ("empty", "agg", "tracked", "excluded", "excluded, hooks kept",
                       "excluded under tracked callers", "sampled") if k in ins), None)
    cm = R.get("cache")
    if cm and cm.get("calls"):
        row("L1d and L2 misses per call over the baseline (cachegrind's "
            "simulation of one core: 32 kB L1d, 512 kB L2; bzip2 compressing)",
            "(reported)", ", ".join("%s %.3f and %.4f (%.0f instructions)" % (
                k, cm[k]["D1"], cm[k]["LLd"], cm[k]["I"]) for k in
                ("empty", "agg", "tracked", "excluded") if k in cm), None)
    st = R.get("startup")
    if st and "init_ms" in st:  # saved before the symbol cache: all cold
        st = dict(st, init_ms_cold=st["init_ms"], bzip2_startup_ms_cold=st["bzip2_startup_ms"],
                  per_1000_tracked_ms_cold=st["per_1000_tracked_ms"],
                  per_1000_excluded_ms_cold=st["per_1000_excluded_ms"])
    if st:
        caches = [c for c in ("cold", "warm") if "init_ms_" + c in st]
        if "bzip2" in R["overhead"]:
            real = R["overhead"]["bzip2"]["base"]["wall_med"]
            for cache, what in (("cold", "a build's first run: DWARF read"),
                                ("warm", "later runs: index from the symbol cache")):
                if cache not in caches:
                    continue
                frac = st["bzip2_startup_ms_" + cache] / 1e3 / real
                row("start-up on bzip2 (init + every function once), %s" % what,
                    "<= 5% of run", "%.1f ms = %.1f%% of %.2f s" % (
                        st["bzip2_startup_ms_" + cache], 100 * frac, real), frac <= 0.05)
        row("loading the runtime and its libraries (CODENSM_DISABLE=1)",
            "(reported)", "%.1f ms" % st["load_ms"], None)
        row("a process that calls none of its 2,000 functions: loading, init, exit "
            "(no key: counting, not sending)",
            "(reported)", ", ".join("%.1f ms %s" % (st["init_ms_" + c], c) for c in caches), None)
        for sel in ("tracked", "excluded"):
            row("resolution, %s" % sel, "(reported)", ", ".join(
                "%.1f ms per 1,000 functions %s" % (st["per_1000_%s_ms_%s" % (sel, c)], c)
                for c in caches), None)
    snd = R.get("send") or st or {}
    if "bzip2_send_cpu_ms_system" in snd:
        v = snd["bzip2_send_cpu_ms_system"]
        row("sending at exit (the system's libcurl loaded at the first send, body built "
            "and posted): CPU added to the bzip2 pair (two processes) on its tiny file",
            "(reported)", "%.1f ms, %.1f ms per process" % (v, v / 2), None)
    mem = R.get("memory")
    if mem:
        row("RSS per tracked function", "(reported)",
            "%.2f kB" % mem["rss_per_function_kb"], None)
        row("RSS per thread", "(reported)",
            "%.1f kB" % mem["rss_per_thread_kb"], None)
    for c in R.get("threads", []):
        shallow = c["kind"] == "shallow"
        ok = c["rt_kb"] <= c["target_kb"]
        row("RSS per thread, %s threads alive: %s" % ("{:,}".format(c["threads"]), c["what"]),
            "<= 2 x uninstrumented + 8 kB" if shallow else "(reported)",
            "%.1f kB (uninstrumented %.1f kB: the runtime adds %+.1f kB)%s" % (
                c["rt_kb"], c["base_kb"], c["rt_kb"] - c["base_kb"],
                ("; target %.1f kB: %s" % (c["target_kb"], "met" if ok else "not met"))
                if shallow else ""),
            ok if shallow else None)
    rd = R.get("redis")
    if rd:
        per = {n: median(v) for n, v in rd["cpu_per_command"].items()}
        for name, target in (("dispatch", 1.1), ("excluded", None),
                             ("dispatch, hooks kept", None)):
            if name + "/base" not in rd:
                continue
            r = rd[name + "/base"]
            what = {"dispatch": "redis: CPU per command, command dispatch tracked (%s), "
                                "the rest excluded / uninstrumented build" % rd["include"],
                    "excluded": "redis: CPU per command, every function excluded / "
                                "uninstrumented build",
                    "dispatch, hooks kept": "redis: CPU per command, dispatch tracked, "
                                            "the rest excluded with CODENSM_PATCH=off / "
                                            "uninstrumented build"}[name]
            row(what, "<= %.1f" % target if target else "(reported)",
                "%.2f%s (%.2f vs %.2f us)" % (r, spread(rd[name + "/base rounds"]),
                                             1e6 * per[name], 1e6 * per["base"]),
                r <= target if target else None)
    pc = R.get("probes")
    if pc and "none" in pc and "10 others" in pc:
        # The claim: a function without a probe pays nothing
        # measurable for probes on others.  10% covers a busy 2-core VM's
        # run-to-run spread of a 4-20 ns call; a real cost (a cache miss
        # or a lookup per call) would show as several times that.
        for kind in ("tracked", "excluded"):
            rr = (pc.get("ratios") or {}).get(kind)
            r = rr["median"] if rr else pc["10 others"][kind] / pc["none"][kind]
            row("probes: a %s call with 10 probes armed on other functions / with none"
                % kind, "<= 1.10", "%.2f%s (%.1f vs %.1f ns)" % (
                    r, " (runs %.2f-%.2f)" % (rr["min"], rr["max"]) if rr else "",
                    pc["10 others"][kind], pc["none"][kind]), r <= 1.10)
        base = pc["none"]["target"]
        row("probes: what one probed call adds, by instrument (event return)", "(reported)",
            ", ".join("%s %+.0f ns" % ("user" if t == "tally" else t, pc[t]["target"] - base)
                      for t in ("incr", "hist", "stack", "log", "tally") if t in pc), None)
        evs = [(e, pc["incr on " + e]["target"] - base) for e in ("call", "end")
               if "incr on " + e in pc]
        if evs:
            row("probes: what one probed call adds, incr by event", "(reported)",
                ", ".join("%s %+.0f ns" % ev for ev in evs), None)
        if "incr on excluded" in pc:
            row("probes: an excluded call with incr on it, unprobed -> probed", "(reported)",
                "%.1f -> %.1f ns" % (pc["none"]["excluded"], pc["incr on excluded"]["excluded"]),
                None)
    ss = R.get("steady")
    if ss and ss.get("growth_kb") is not None:
        row("RSS growth at steady state (2 threads, flush every 1 s, %d s)"
            % ss["seconds"], "none",
            "%+d kB (%d -> %d kB; %d posts)" % (ss["growth_kb"], ss["rss_at_3s_kb"],
                                                ss["rss_end_kb"], ss["posts"]),
            ss["growth_kb"] <= 256)
    pr = R.get("payload")
    if pr:
        for p in pr["sizes"]:
            row("payload build, %d functions" % p["functions"], "(reported)",
                "%.2f ms, %d bodies, %d bytes, %.0f functions/s" % (
                    p["ms"], p["bodies"], p["bytes"], p["functions_per_s"]),
                None)
    acc = R.get("sampled_accuracy")
    if acc:
        row("sampled timing on bzip2: calls identical to exact mode",
            "exact", "yes (%d functions)" % acc["functions"] if acc["calls_identical"]
            else "**no**", acc["calls_identical"])
        for lf in acc["leaves"]:
            row("sampled timing on bzip2: %s, ns per call, sampled vs exact (%s calls)"
                % (lf["name"].rsplit(".", 1)[-1], "{:,}".format(lf["calls"])), "(reported)",
                "%.1f vs %.1f (%+.0f%%; median of %d runs each)" % (
                    lf["sampled_ns"], lf["exact_ns"],
                    100 * (lf["sampled_ns"] / lf["exact_ns"] - 1), acc["runs"]), None)
    ld = R.get("load")
    for label in ("steady", "kill -9"):
        f = (ld or {}).get(label)
        if not f:
            continue
        what = "codensm-server, %s: %d clients on loopback for %.0f s" % (
            "steady" if label == "steady" else "killed -9 a third of the way in and restarted",
            f["connections"], f["seconds"])
        steady = label == "steady"  # the floor is for the steady run; the other is reported
        row(what + ", requests answered 200 per second",
            ">= {:,}".format(LOAD_FLOOR_RPS) if steady else "(reported)",
            "{:,.0f} ({:,.0f} function deltas/s)".format(f["requests_per_s"], 5 * f["requests_per_s"]),
            f["requests_per_s"] >= LOAD_FLOOR_RPS if steady else None)
        if f["p99_ms"] is not None:
            row(what + ", latency of those answers",
                "p99 <= %d ms" % LOAD_CEILING_P99_MS if steady else "(reported)",
                "p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (f["p50_ms"], f["p99_ms"], f["max_ms"]),
                f["p99_ms"] <= LOAD_CEILING_P99_MS if steady else None)
        row(what + ", the store equals what was acknowledged", "exact",
            "yes" if not f["integrity_failures"] else "**no**: " + "; ".join(f["integrity_failures"]),
            not f["integrity_failures"])
    if R.get("scale"):
        import ingest_scale
        for what, target, value, ok in ingest_scale.checks(R["scale"]):
            row(what, target, value, ok)
    return "\n".join(lines)


def runtime_clock(build):
    """The runtime's own line naming its clock (CODENSM_LOG=debug): the
    TSC and its rate, or CLOCK_MONOTONIC, which costs more per read."""
    binary = os.path.join(build, "bench", "calls-rt")
    if not os.path.exists(binary):
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODENSM_")}
    env.update(CODENSM_LOG="debug", CODENSM_INCLUDE="none")
    p = subprocess.run([binary, "-n", "0"], env=env, capture_output=True, text=True)
    for line in p.stderr.splitlines():
        if line.startswith("codensm: timing with "):
            return line[len("codensm: timing with "):]
    return None


def machine(build):
    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
            "clock": runtime_clock(build),
            "compiler": subprocess.run(["cc", "--version"], capture_output=True,
                                       text=True).stdout.splitlines()[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--excluded-runs", type=int, default=15,
                    help="rounds of base, empty hooks, NOPs and excluded alone, "
                    "for the excluded target")
    ap.add_argument("--units", type=int, default=3,
                    help="synthetic work units per run (~8M calls each)")
    # The excluded target compares overheads a tenth the size of the
    # empty hooks': runs long enough that the clock's tick and each
    # process's start-up are small beside them.
    ap.add_argument("--excluded-units", type=int, default=20,
                    help="synthetic work units per run of the excluded rounds")
    ap.add_argument("--excluded-bzip2-copies", type=int, default=12,
                    help="copies of bzip2's test files in the excluded rounds' input")
    ap.add_argument("--excluded-lua-reps", type=int, default=4,
                    help="times work.lua does its work in each run of the excluded rounds")
    ap.add_argument("--scaling-units", type=int, default=5,
                    help="work units per thread in the 1- and 2-thread runs")
    ap.add_argument("--bzip2-copies", type=int, default=4,
                    help="copies of bzip2's test files in its input")
    ap.add_argument("--steady-seconds", type=int, default=12)
    ap.add_argument("--load-seconds", type=int, default=20,
                    help="each of the server's two load runs")
    ap.add_argument("--load-connections", type=int, default=64)
    ap.add_argument("--redis-requests", type=int, default=50000,
                    help="redis-benchmark requests of each command per run")
    ap.add_argument("--scale-seconds", type=int, default=15,
                    help="each ingest run of the scale part (bench/ingest_scale.py)")
    ap.add_argument("--scale-minutes", type=int, default=5,
                    help="minutes of data under the scale part's dashboard query")
    ap.add_argument("--no-uftrace", action="store_true")
    ap.add_argument("--no-rt", action="store_true",
                    help="only the variants that do not need the runtime")
    ap.add_argument("--only", default="",
                    help="comma list of: synthetic,bzip2,scaling,startup,send,"
                    "memory,threads,steady,instructions,cache,payload,accuracy,load,probes,redis,lua,scale")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--report", metavar="JSON",
                    help="print the table of a saved run (results/*.json) "
                    "and run nothing")
    ap.add_argument("--doc", nargs="?", const=DOC, default=None, metavar="MD",
                    help="write the table into this doc's bench markers "
                    "(default docs/performance.md; a full run always does)")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            report = build_report(json.load(f))
        print(report)
        if args.doc:
            write_doc(args.doc, report, os.path.abspath(args.report))
        return
    build = os.path.abspath(args.build)
    only = set(filter(None, args.only.split(",")))

    def want(s):
        return not only or s in only
    if shutil.which("uftrace") is None and not args.no_uftrace:
        log("run.py: 'uftrace' not found, skipping that variant")
        args.no_uftrace = True

    t_start = time.time()
    R = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
         "runs": args.runs, "machine": machine(args.build), "overhead": {},
         "excluded": {}, "excluded_runs": args.excluded_runs,
         "units": args.units, "bzip2_copies": args.bzip2_copies,
         "excluded_units": args.excluded_units,
         "excluded_bzip2_copies": args.excluded_bzip2_copies,
         "excluded_lua_reps": args.excluded_lua_reps}
    vars_ = variants(args)
    if args.no_rt:
        vars_ = [v for v in vars_ if v.kind not in ("rt", "rts")]
    R["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
    with tempfile.TemporaryDirectory(prefix="codensm-bench.") as tmp:
        env = base_env(tmp)
        # Only the sections that run bzip2 need its sources and input.
        bz = Bzip2(build, tmp, args.bzip2_copies) if any(
            want(x) for x in ("bzip2", "startup", "send", "cache", "accuracy",
                              "instructions")) else None
        if not args.no_rt and any(want(s) for s in ("synthetic", "bzip2", "scaling")):
            sel = R["selection"] = check_selection(build, tmp, env)
            log("selection: tracked %d functions / %d calls, excluded %d"
                % (len(sel["tracked"]["functions"]), sel["tracked"]["calls"],
                   len(sel["excluded"]["functions"])))
            if not sel["tracked"]["functions"] or sel["excluded"]["functions"]:
                log("run.py: warning: the tracked/excluded runs do not "
                    "select what they should: %r" % sel)
        # The timed runs send to a live sink, as a user's program does
        # with its server up: each posts its last flush at exit and starts
        # with nothing pending.  Against an endpoint that refuses, every
        # run would spool its body and the next would begin by trying the
        # whole backlog, a start-up cost of the bench's own making.
        srv = start_sink()
        oenv = sink_env(env, srv, 3600)
        if want("synthetic"):
            log("synthetic: %d units per run" % args.units)
            R["overhead"]["synthetic"] = measure(Synthetic(args.units), vars_,
                                                 build, tmp, oenv, args.runs)
            if not args.no_rt:
                R["excluded"]["synthetic"] = measure_excluded(
                    Synthetic(args.excluded_units), vars_, build, tmp, oenv,
                    args.excluded_runs)
        if want("bzip2"):
            log("bzip2: upstream test and %d-copy workload" % args.bzip2_copies)
            R["bzip2_upstream_test"] = {
                v.name: bz.upstream_test(build, v, tmp, oenv)
                for v in vars_ if v.wrap is None}
            if not all(R["bzip2_upstream_test"].values()):
                raise SystemExit("run.py: bzip2's own test failed: %r"
                                 % R["bzip2_upstream_test"])
            R["overhead"]["bzip2"] = measure(bz, vars_, build, tmp, oenv,
                                             args.runs)
            if not args.no_rt:
                R["excluded"]["bzip2"] = measure_excluded(
                    Bzip2(build, tmp, args.excluded_bzip2_copies), vars_, build, tmp, oenv,
                    args.excluded_runs)
        if want("lua"):
            lua = Lua()
            log("lua: %s" % os.path.join("bench", "lua", "work.lua"))
            R["overhead"]["lua"] = measure(lua, [v for v in vars_ if v.name in lua.variants],
                                           build, tmp, oenv, args.runs)
            if not args.no_rt:
                R["excluded"]["lua"] = measure_excluded(
                    Lua(args.excluded_lua_reps), vars_, build, tmp, oenv, args.excluded_runs)
        if want("scaling"):
            log("scaling: 1 and 2 threads")
            R["scaling"] = scaling(build, tmp, oenv, args.runs,
                                   args.scaling_units, not args.no_rt)
        if want("redis") and not args.no_rt:
            log("redis: %d requests of each of %s per run" % (args.redis_requests, REDIS_TESTS))
            R["redis"] = redis_bench(build, tmp, oenv, args.runs, args.redis_requests)
        if want("probes") and not args.no_rt:
            log("probes: %d interleaved runs" % args.runs)
            R["probes"] = probe_costs(build, tmp, oenv, args.runs)
        R["timed_posts"] = Sink.posts
        srv.shutdown()
        if glob.glob(os.path.join(env["CODENSM_SPOOL_DIR"], "*")):
            log("run.py: warning: the sink missed bodies of the timed runs")
        if not args.no_rt:
            if want("startup"):
                log("start-up")
                R["startup"] = startup(build, tmp, env, args.runs, bz)
            if want("send"):
                log("sending at exit")
                R["send"] = sending(build, tmp, env, args.runs, bz)
            if want("memory"):
                log("memory")
                R["memory"] = memory(build, tmp, env)
            if want("threads"):
                log("memory per thread alive")
                R["threads"] = thread_memory(build, tmp, env)
                for c in R["threads"]:
                    if c["kind"] == "shallow":
                        log("thread memory target (%d threads): %s" % (
                            c["threads"], "met" if c["rt_kb"] <= c["target_kb"] else "not met"))
            if want("steady"):
                log("steady state: %d s" % args.steady_seconds)
                R["steady"] = steady_state(build, tmp, env, args.steady_seconds)
            if want("instructions") and shutil.which("valgrind"):
                log("instructions per call (callgrind)")
                R["instructions"] = instructions(build, tmp, env)
                log("hook-call instructions left when excluded (callgrind)")
                R["hooks_left"] = hook_instructions_left(build, tmp, env, bz)
            if want("cache") and shutil.which("valgrind"):
                log("cache misses per call (cachegrind's simulation, bzip2)")
                R["cache"] = cache_misses(build, tmp, env, bz)
            if want("payload"):
                log("payload build rate")
                R["payload"] = payload_rate(build)
            if want("accuracy"):
                log("sampled timing against exact timing on bzip2")
                R["sampled_accuracy"] = sampled_accuracy(build, tmp, env, bz,
                                                         args.runs)
        if want("load"):
            # Last: it keeps both cores busy.
            log("load: codensm-server, %d clients, %d s twice"
                % (args.load_connections, args.load_seconds))
            R["load"] = load(build, args.load_seconds, args.load_connections)
        if want("scale"):
            # After load, for the same reason: servers and PostgreSQL take
            # both cores.
            import ingest_scale
            log("scale: 1 to 3 servers on PostgreSQL and the SQLite default, %d s each"
                % args.scale_seconds)
            R["scale"] = ingest_scale.run(build, args.scale_seconds, args.load_connections,
                                          args.scale_minutes, log=log)
    R["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    R["ratios"] = ratios_of(R)
    R["elapsed_s"] = time.time() - t_start
    report = build_report(R)
    print(report)
    os.makedirs(args.results, exist_ok=True)
    stem = os.path.join(args.results,
                        datetime.datetime.now().strftime("%Y-%m-%d-%H%M"))
    with open(stem + ".md", "w") as f:
        f.write("# codensm benchmarks, %s\n\n%s\n" % (R["date"], report))
    with open(stem + ".json", "w") as f:
        json.dump(R, f, indent=1)
    log("run.py: %.0f s; wrote %s.md and .json" % (R["elapsed_s"], stem))
    if args.doc or not only:
        write_doc(args.doc or DOC, report, stem + ".json")
        log("run.py: wrote the table into %s" % (args.doc or DOC))


if __name__ == "__main__":
    main()
