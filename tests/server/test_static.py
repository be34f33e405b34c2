"""The page's files: served with the right types and safety headers, and
no URL ever reaches a file outside the web folder."""
import os
import shutil
import tempfile
import unittest

from serverlib import Server, ServerTest, WEB


class StaticFiles(ServerTest):
    @classmethod
    def prepare(cls):
        cls.base = tempfile.mkdtemp(prefix="codensm-web-")
        web = os.path.join(cls.base, "web")
        os.makedirs(os.path.join(web, "sub"))
        os.makedirs(os.path.join(cls.base, "web2"))
        files = {"index.html": "<!doctype html><title>t</title>", "app.js": "export {};",
                 "style.css": "body{}", "icon.svg": "<svg/>", "sub/data.json": "{}"}
        for name, text in files.items():
            with open(os.path.join(web, name), "w") as f:
                f.write(text)
        with open(os.path.join(cls.base, "web2", "secret.txt"), "w") as f:
            f.write("SECRET-OUTSIDE")
        with open(os.path.join(cls.base, "secret.txt"), "w") as f:
            f.write("SECRET-OUTSIDE")
        os.symlink("/etc/passwd", os.path.join(web, "leak"))
        os.symlink(os.path.join(cls.base, "web2", "secret.txt"), os.path.join(web, "sib"))
        os.symlink(os.path.join(cls.base, "web2"), os.path.join(web, "dirlink"))
        cls.srv.web = web

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.base, ignore_errors=True)

    def test_files_have_their_content_types(self):
        """html, js, css, svg and json files carry their types, CSP and nosniff"""
        types = {"/": "text/html; charset=utf-8", "/index.html": "text/html; charset=utf-8",
                 "/app.js": "text/javascript; charset=utf-8", "/style.css": "text/css; charset=utf-8",
                 "/icon.svg": "image/svg+xml", "/sub/data.json": "application/json; charset=utf-8"}
        for path, ctype in types.items():
            status, headers, _ = self.srv.request("GET", path)
            self.assertEqual((status, headers["content-type"], headers["content-security-policy"],
                              headers["x-content-type-options"]),
                             (200, ctype, "default-src 'self'", "nosniff"), path)
        self.assertEqual(self.srv.request("GET", "/")[2], b"<!doctype html><title>t</title>")

    def test_traversal_never_leaves_the_folder(self):
        """.., encoded .., symlinks out and sibling folders answer 403 or 404, never the file"""
        attempts = ["/../secret.txt", "/../../../../etc/passwd", "/%2e%2e/secret.txt",
                    "/%2E%2E/%2E%2E/etc/passwd", "/..%2fsecret.txt", "/sub/../../secret.txt",
                    "/sub/%2e%2e/%2e%2e/web2/secret.txt", "/./index.html", "/leak", "/sib",
                    "/dirlink/secret.txt", "/..\\secret.txt", "/%5c..%5csecret.txt",
                    "//etc/passwd", "/sub/", "/sub", "/nope.html", "/index.html%00.js"]
        for path in attempts:
            status, _, data = self.srv.request("GET", path)
            self.assertIn(status, (403, 404), path)
            self.assertNotIn(b"SECRET-OUTSIDE", data, path)
            self.assertNotIn(b"root:", data, path)

    def test_traversal_answers(self):
        """a .. segment is 403, a missing file 404"""
        self.assertEqual(self.srv.request("GET", "/../secret.txt")[0], 403)
        self.assertEqual(self.srv.request("GET", "/leak")[0], 403)
        self.assertEqual(self.srv.request("GET", "/nope.html")[0], 404)

    def test_only_get_and_head(self):
        """HEAD answers the headers, other methods 405"""
        status, headers, data = self.srv.request("HEAD", "/app.js")
        self.assertEqual((status, headers["content-length"], data), (200, "10", b""))
        self.assertEqual(self.srv.request("DELETE", "/app.js")[0], 405)

    def test_debian_javascript_is_served_under_javascript(self):
        """/javascript/ maps Debian's /usr/share/javascript, with the same checks"""
        if not os.path.isfile("/usr/share/javascript/chart.js/chart.min.js"):
            self.skipTest("libjs-chart.js is not installed")
        status, headers, _ = self.srv.request("GET", "/javascript/chart.js/chart.min.js")
        self.assertEqual((status, headers["content-type"]), (200, "text/javascript; charset=utf-8"))
        status, _, data = self.srv.request("GET", "/javascript/../../../etc/passwd")
        self.assertEqual(status, 403)


class SlowAndLargeClients(ServerTest):
    def test_headers_over_64_kb_are_431(self):
        """a request whose headers pass the 64 KB connection memory is refused"""
        status, _, _ = self.srv.request("GET", "/", None, {"X-Big": "a" * 100000})
        self.assertEqual(status, 431)

    def test_an_idle_connection_is_closed(self):
        """a client that connects and sends nothing is dropped after 15 s"""
        import socket
        import time
        c = socket.create_connection(("127.0.0.1", self.srv.port))
        c.settimeout(30)
        t0 = time.time()
        self.assertEqual(c.recv(100), b"")
        self.assertLess(time.time() - t0, 20)
        c.close()
        self.assertEqual(self.srv.request("GET", "/nope")[0], 404)


class DefaultWebFolder(ServerTest):
    def test_the_built_tree_serves_tools_server_web(self):
        """without --web, build/bin/codensm-server serves tools/server/web"""
        if not os.path.isfile(os.path.join(WEB, "index.html")):
            self.skipTest("tools/server/web/index.html is not there yet")
        status, headers, data = self.srv.request("GET", "/")
        with open(os.path.join(WEB, "index.html"), "rb") as f:
            self.assertEqual((status, data), (200, f.read()))


if __name__ == "__main__":
    unittest.main()
