"""cdp.py: drive Debian's headless chromium over the DevTools protocol, stdlib only.

Chromium is started with --remote-debugging-pipe: it reads protocol messages
from fd 3 and writes them to fd 4, each a JSON text ended by a NUL byte.  No
port, no websocket, no npm: nothing to download and nothing to race for.

Dialogs (alert/confirm/prompt) are recorded in `dialogs` and dismissed at once,
so a page that tries to alert() can never hang a test; exceptions and console
errors are recorded in `errors`.
"""
import base64
import json
import os
import select
import shutil
import tempfile
import time

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-pipe",
]


class CDPError(Exception):
    pass


def find_chromium():
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Browser:
    """One headless chromium with one page (a flat-mode target session)."""

    def __init__(self, width=1280, height=800, log_path=None):
        exe = find_chromium()
        if not exe:
            raise CDPError("chromium not found (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="codensm-chromium-")
        to_r, self._to_w = os.pipe()     # we write, chromium reads on fd 3
        self._from_r, from_w = os.pipe()  # chromium writes on fd 4, we read
        log_path = log_path or os.devnull
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
            # via high numbers first, so that neither pipe end is clobbered
            # if the kernel happened to hand out 3 or 4 to the other one
            (os.POSIX_SPAWN_DUP2, to_r, 100),
            (os.POSIX_SPAWN_DUP2, from_w, 101),
            (os.POSIX_SPAWN_DUP2, 100, 3),
            (os.POSIX_SPAWN_DUP2, 101, 4),
            (os.POSIX_SPAWN_CLOSE, 100),
            (os.POSIX_SPAWN_CLOSE, 101),
        ]
        argv = [exe] + CHROMIUM_ARGS + [f"--user-data-dir={self.profile}",
                                        f"--window-size={width},{height}", "about:blank"]
        self.pid = os.posix_spawn(exe, argv, os.environ, file_actions=actions, setsid=True)
        os.close(to_r)
        os.close(from_w)
        self._buf = b""
        self._id = 0
        self.session = None
        self.events = []
        self.dialogs = []
        self.errors = []
        self.width, self.height = width, height

    # ---- the protocol ----

    def _write(self, msg):
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self._to_w, data)
            data = data[n:]

    def _read_one(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for chromium")
            r, _, _ = select.select([self._from_r], [], [], left)
            if not r:
                continue
            chunk = os.read(self._from_r, 1 << 20)
            if not chunk:
                raise CDPError("chromium closed the pipe (crashed?)")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _on_event(self, msg):
        method = msg.get("method")
        params = msg.get("params", {})
        self.events.append(msg)
        if method == "Page.javascriptDialogOpening":
            self.dialogs.append(params)
            self._write({"id": self._next_id(), "method": "Page.handleJavaScriptDialog",
                         "params": {"accept": False}, "sessionId": msg.get("sessionId")})
        elif method == "Runtime.exceptionThrown":
            d = params.get("exceptionDetails", {})
            self.errors.append("exception: " + str(d.get("exception", {}).get("description") or d.get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            e = params["entry"]
            self.errors.append(f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())

    def _next_id(self):
        self._id += 1
        return self._id

    def send(self, method, params=None, session=True, timeout=30):
        mid = self._next_id()
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        self._write(msg)
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_one(deadline)
            if m.get("id") == mid:
                if "error" in m:
                    raise CDPError(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})
            if "method" in m:
                self._on_event(m)

    def pump(self, seconds):
        """Handle events for a while (dialogs, errors) without sending anything."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._on_event(self._read_one(deadline))
        except CDPError as e:
            if "timed out" not in str(e):
                raise

    # ---- the page ----

    def open(self, grant_clipboard_origin=None):
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for m in ("Page.enable", "Runtime.enable", "Log.enable"):
            self.send(m)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        self.send("Emulation.setFocusEmulationEnabled", {"enabled": True})
        if grant_clipboard_origin:
            self.send("Browser.grantPermissions", {
                "origin": grant_clipboard_origin,
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}, session=False)

    def navigate(self, url):
        """Load url as a new document (via about:blank, so that a URL differing
        only in its fragment reloads the page instead of just scrolling)."""
        self.send("Page.navigate", {"url": "about:blank"})
        r = self.send("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError(f"navigate {url}: {r['errorText']}")

    def eval(self, expr, await_promise=True, gesture=False, timeout=30):
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": await_promise, "userGesture": gesture},
                      timeout=timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise CDPError(f"eval failed: {d.get('exception', {}).get('description') or d.get('text')}\n  in: {expr[:200]}")
        return r.get("result", {}).get("value")

    def wait_for(self, expr, timeout=15, what=None):
        """Poll a JS expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last = None
        guarded = f"(() => {{ try {{ return ({expr}); }} catch (e) {{ return null; }} }})()"
        while time.monotonic() < deadline:
            last = self.eval(guarded)
            if last:
                return last
            self.pump(0.1)
        raise CDPError(f"timed out after {timeout}s waiting for {what or expr} (last value {last!r})")

    def click(self, selector):
        """A real mouse click at the element's centre (user activation included)."""
        box = self.eval(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView({{block: 'center'}});
            const r = el.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        }})()""")
        if not box:
            raise CDPError(f"click: no element {selector}")
        self.mouse_move(*box)
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})

    def mouse_move(self, x, y):
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def screenshot(self, path, full_page=False):
        params = {"format": "png"}
        if full_page:
            size = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": size[0], "height": min(size[1], 6000), "scale": 1})
        data = self.send("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.send("Browser.close", session=False, timeout=5)
        except (CDPError, OSError):
            pass
        for _ in range(50):
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(self.pid, 9)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
        for fd in (self._to_w, self._from_r):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)
