"""test_endpoint.py: endpoints that are wrong in the ways deployments get
them wrong: one that dies mid-run, one that answers only after 30 s, a
host name that does not resolve, an HTTPS server whose certificate is not
trusted.  In each the program exits promptly with its output unchanged, the
runtime says at most one line about it, and every call arrives exactly
once, in this run or from the spool with the next one.  And the libcurl
it sends through is the system's, beside a program that uses it too."""
import os
import subprocess
import time
import unittest

from harness import (PROGS, Case, Totals, compile_prog, have, rt_link, run,
                     sample, sample_expect_shop)

R, W = 50, 100  # ticker rounds (20 ms each) and calls per round
EXIT_S = 4.0    # the runtime's exit budget (2.5 s + 0.4 s to spool) and slack
UNRESOLVABLE = "http://codensm-endpoint.invalid:8650/codensm/ingest"  # RFC 2606: never resolves


def ticker_expect(runs=1, drains=0, rounds=R):
    """`runs` ticker runs of `rounds` x W; each drain run (ticker 0 0) adds a main."""
    rare = (rounds + 9) // 10 * runs
    return {"ticker.tick_round": (rounds * runs, 0), "ticker.tick_work": (rounds * W * runs, 0),
            "ticker.tick_rare": (rare, rare), "ticker.main": (runs + drains, 0)}


def runtime_lines(r):
    """What the runtime said on stderr."""
    return [l for l in r.stderr.splitlines() if l.startswith("codensm:")]


def make_ca(folder):
    """A throw-away CA and a server certificate it signed for 127.0.0.1 and
    localhost: (ca.pem, server.pem, server.key) in `folder`."""
    ca, ca_key = os.path.join(folder, "ca.pem"), os.path.join(folder, "ca.key")
    crt, key = os.path.join(folder, "server.pem"), os.path.join(folder, "server.key")
    csr, ext = os.path.join(folder, "server.csr"), os.path.join(folder, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (["openssl", "req", "-x509"] + ec + ["-keyout", ca_key, "-out", ca, "-days", "2",
                 "-subj", "/CN=codensm test CA"],
                ["openssl", "req"] + ec + ["-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
                ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
                 "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext]):
        p = subprocess.run(cmd, cwd=folder, capture_output=True, text=True)
        if p.returncode != 0:
            raise AssertionError("%s failed: %s" % (" ".join(cmd), p.stderr))
    return ca, crt, key


class TestEndpoint(Case):
    def ticker(self, rec, rounds=R, **env):
        """One ticker run flushing every 0.1 s: exits 0, within its time plus
        the runtime's exit budget, with its own output."""
        prog = compile_prog("ticker", ["ticker.c"])
        r = run([prog, str(rounds), str(W)],
                self.env(rec, CODENSM_INCLUDE="ticker", CODENSM_FLUSH_INTERVAL="0.1", **env),
                timeout=60)
        self.assert_ran(r)
        self.assertEqual(r.stdout, "ticker: %d x %d\n" % (rounds, W))
        self.assertLess(r.seconds, rounds * 0.02 + EXIT_S, "exit time; %r" % r)
        return r

    def drain(self, rec):
        """An empty run from the same spool folder delivers what is spooled."""
        prog = compile_prog("ticker", ["ticker.c"])
        r = run([prog, "0", "0"], self.env(rec, CODENSM_INCLUDE="ticker"))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "ticker: 0 x 0\n")
        self.assertEqual(self.spooled(), [], "the spool is empty after a run with a live endpoint")
        return r

    def test_endpoint_dies_mid_run(self):
        """an endpoint that dies after two bodies: the rest is spooled at exit, the next run delivers it, exact"""
        rounds = 150  # 3 s: the receiver dies at ~0.2 s, long before the end
        first = self.receiver(down_after=2)
        r = self.ticker(first, rounds=rounds)
        self.assertTrue(first.down, "the receiver went down")
        self.assertEqual(len(first.committed()), 2, "bodies committed before it went down")
        got = Totals(first.committed()).counts("ticker.tick_work").get("ticker.tick_work", (0, 0))
        self.assertTrue(0 < got[0] < rounds * W, "the first receiver got part of the calls: %r" % (got,))
        self.assertNotEqual(self.spooled(), [], "the rest is spooled at exit")
        lines = runtime_lines(r)
        self.assertEqual(len(lines), 1, "one line about the outage: %r" % lines)
        self.assertIn("127.0.0.1:%d" % first.port, lines[0])
        second = self.receiver()
        self.drain(second)
        self.assertNotEqual(second.committed(), [])
        self.assert_exact(Totals(first.committed() + second.committed()),
                          ticker_expect(drains=1, rounds=rounds))

    def test_endpoint_answers_after_30s(self):
        """an answer 35 s late: the program exits in its budget, the late commit and the resend count once"""
        delay = 35.0
        rec = self.receiver(plan=[("delay", delay)])
        r = self.ticker(rec)
        late = rec.all_requests()
        self.assertEqual(len(late), 1, "the first body is in flight the whole run")
        self.assertFalse(late[0]["done"], "it is still unanswered when the program has exited")
        self.assertNotEqual(self.spooled(), [], "in-flight body and the rest spooled at exit")
        # Cut at the exit deadline by the transport itself, not left running
        # while the flusher's emergency dump spools ("did not finish in time").
        lines = runtime_lines(r)
        self.assertEqual(len(lines), 1, "one line about the endpoint: %r" % lines)
        self.assertIn("no answer from %s" % rec.url, lines[0])
        self.assertIn("resend the same batch", lines[0])
        self.drain(rec)  # the endpoint answers new requests at once
        late_id = late[0]["json"]["_meta"]["batch_id"]
        resent = [q for q in rec.all_requests()[1:] if q["json"]["_meta"]["batch_id"] == late_id]
        self.assertEqual(len(resent), 1, "the drain resent the in-flight body with its batch id")
        self.assertEqual(resent[0]["raw"], late[0]["raw"], "resent verbatim")
        deadline = late[0]["time"] + delay + 5
        while not late[0]["done"] and time.time() < deadline:
            time.sleep(0.1)
        self.assertTrue(late[0]["done"], "the late request was answered")
        self.assertFalse(late[0]["committed"], "the late commit was a duplicate of the resend")
        self.assert_exact(Totals(rec.committed()), ticker_expect(drains=1))

    def test_host_does_not_resolve(self):
        """an endpoint host that does not resolve: one stderr line naming it, spooled, next run exact"""
        r = self.ticker(UNRESOLVABLE)
        lines = runtime_lines(r)
        self.assertEqual(len(lines), 1, "one line about the endpoint: %r" % lines)
        self.assertIn("codensm-endpoint.invalid", lines[0])
        self.assertIn("resolv", lines[0].lower())
        self.assertNotEqual(self.spooled(), [], "the calls are spooled")
        rec = self.receiver()
        r2 = self.ticker(rec)
        self.assertEqual(runtime_lines(r2), [])
        self.assertEqual(self.spooled(), [])
        self.assert_exact(Totals(rec.committed()), ticker_expect(runs=2))

    def test_tls_certificate_not_trusted(self):
        """HTTPS with a certificate from an unknown CA: refused with one line naming CODENSM_CA_FILE, spooled; with it, exact"""
        if not have("openssl"):
            self.skipTest("the openssl command is not installed (.ci/deps)")
        ca, crt, key = make_ca(self.tmp)
        rec = self.receiver(tls=(crt, key))
        r = self.ticker(rec)
        self.assertEqual(rec.all_requests(), [], "no request got past the handshake")
        self.assertNotEqual(rec.tls_failures, [], "the runtime did try the endpoint")
        lines = runtime_lines(r)
        self.assertEqual(len(lines), 1, "one line about the certificate: %r" % lines)
        self.assertIn("certificate", lines[0])
        self.assertIn("CODENSM_CA_FILE", lines[0])
        self.assertIn(rec.url, lines[0])
        self.assertNotEqual(self.spooled(), [], "the calls are spooled")
        r2 = self.ticker(rec, CODENSM_CA_FILE=ca)
        self.assertEqual(runtime_lines(r2), [])
        self.assertEqual(self.spooled(), [])
        self.assert_exact(Totals(rec.committed()), ticker_expect(runs=2))


def system_libcurl():
    """The file dlopen("libcurl.so.4") loads, as ldconfig's cache names it."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    paths = [l.split("=> ", 1)[1].strip() for l in out.splitlines()
             if l.strip().startswith("libcurl.so.4 ") and "=> " in l]
    if not paths:
        raise AssertionError("ldconfig -p lists no libcurl.so.4: install libcurl4")
    return os.path.realpath(paths[0])


def libcurl_used(r):
    """The file the runtime's libcurl calls went to, from its debug line."""
    got = [l.split("libcurl: ", 1)[1] for l in r.stderr.splitlines()
           if l.startswith("codensm: libcurl: ")]
    return got[0] if len(got) == 1 else got


class TestSystemLibcurl(Case):
    """The runtime sends through the system's libcurl, loaded at the first
    send, whether it is linked shared or static, and beside a program that
    uses that same libcurl itself."""

    def assert_system_libcurl(self, r):
        used = libcurl_used(r)
        self.assertIsInstance(used, str, "one libcurl line: %r" % r)
        self.assertEqual(os.path.realpath(used), system_libcurl())

    def test_shared_runtime_sends_through_the_systems(self):
        """the shop, linked with libcodensm-rt.so: exact counts, sent through the system's libcurl"""
        rec = self.receiver()
        r = run([sample("shop"), "200"], self.env(rec, CODENSM_INCLUDE="checkout,payments,inventory,legacy",
                                                   CODENSM_LOG="debug"))
        self.assert_ran(r)
        self.assert_system_libcurl(r)
        self.assert_exact(Totals(rec.committed()), sample_expect_shop(200))

    def test_static_runtime_sends_through_the_systems(self):
        """the shop, linked with libcodensm-rt.a: exact counts, sent through the system's libcurl"""
        rec = self.receiver()
        r = run([sample("shop-static"), "200"], self.env(rec, CODENSM_INCLUDE="checkout,payments,inventory,legacy",
                                                          CODENSM_LOG="debug"))
        self.assert_ran(r)
        self.assert_system_libcurl(r)
        self.assert_exact(Totals(rec.committed()), sample_expect_shop(200))

    def test_program_with_its_own_libcurl(self):
        """a program using the system's libcurl itself (file:// URLs) keeps working beside the runtime's sends, and its calls arrive exactly"""
        prog = compile_prog("curlhost", ["curlhost.c"], link=rt_link() + ["-lcurl"])
        src = os.path.join(PROGS, "curlhost.c")
        rec = self.receiver()
        r = run([prog, "file://" + src, "30"],
                self.env(rec, CODENSM_INCLUDE="curlhost", CODENSM_LOG="debug"))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "curlhost: 30 fetches, %d bytes, last: No error\n"
                         % (30 * os.path.getsize(src)))
        self.assert_system_libcurl(r)
        self.assert_exact(Totals(rec.committed()), {"curlhost.main": (1, 0), "curlhost.fetch": (30, 0)})

    def test_program_starts_openssl_after_the_runtime(self):
        """a program that loads libcurl after the runtime started, so OpenSSL shuts down before the final send: no crash, one line, spooled; the next run delivers, exact"""
        prog = compile_prog("latecurl", ["latecurl.c"])
        rec = self.receiver()
        r = run([prog, "300", "late"], self.env(rec, CODENSM_INCLUDE="latecurl"))
        self.assert_ran(r)
        self.assertEqual(r.stdout, "latecurl: 300 steps\n")
        self.assertEqual(runtime_lines(r), ["codensm: cannot send: the program shut OpenSSL down before "
                                            "the runtime's first send; keeping data for the next run"])
        self.assertEqual(rec.all_requests(), [], "nothing was sent through the stopped OpenSSL")
        self.assertNotEqual(self.spooled(), [], "the calls are spooled")
        r2 = run([prog, "0"], self.env(rec, CODENSM_INCLUDE="latecurl"))
        self.assert_ran(r2)
        self.assertEqual(runtime_lines(r2), [])
        self.assertEqual(self.spooled(), [])
        self.assert_exact(Totals(rec.committed()), {"latecurl.main": (2, 0), "latecurl.step": (300, 0)})


if __name__ == "__main__":
    unittest.main()
