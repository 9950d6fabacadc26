"""Debian's headless chromium driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands on fd 3, answers on fd 4, NUL-separated
JSON), with nothing but the standard library. Shared by cdp.py (the
dashboard) and report_cdp.py (the report).
"""
import base64, json, os, subprocess, sys, tempfile, time


class Browser:
    def __init__(self, chromium, width=1280, height=2000):
        to_chrome_r, self.to_chrome_w = os.pipe()
        self.from_chrome_r, from_chrome_w = os.pipe()

        def child_fds():
            # Through fresh descriptors: a pipe end may already be fd 3 or 4,
            # and dup2 onto itself would keep its close-on-exec flag.
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        profile = tempfile.mkdtemp(prefix="port25-chromium-")
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--remote-debugging-pipe", "--user-data-dir=" + profile, "--window-size=%d,%d" % (width, height), "about:blank"],
            preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0

    def read_message(self):
        while b"\0" not in self.buf:
            chunk = os.read(self.from_chrome_r, 1 << 16)
            if not chunk:
                sys.exit("chromium closed the DevTools pipe (did it start? exit code %r)" % self.proc.poll())
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        m = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self.to_chrome_w, json.dumps(m).encode() + b"\0")
        while True:
            r = self.read_message()
            if r.get("id") == self.next_id:
                if "error" in r:
                    sys.exit("%s failed: %r" % (method, r["error"]))
                return r["result"]

    def evaluate(self, expr, session):
        return self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)["result"].get("value")

    def tab(self):
        """A new tab's session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        return self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def load(self, url, s):
        self.send("Page.enable", session=s)
        self.send("Page.navigate", {"url": url}, s)
        deadline = time.time() + 30
        while True:
            state = self.evaluate("document.readyState + ' ' + location.href", s) or ""
            if state.startswith("complete") and "about:blank" not in state:
                return
            if time.time() > deadline:
                sys.exit("page did not load: %r" % state)
            time.sleep(0.1)

    def screenshot(self, s, path):
        png = base64.b64decode(self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, s)["data"])
        with open(path, "wb") as f:
            f.write(png)

    def close(self):
        try:
            self.send("Browser.close")
        except BaseException:
            pass  # already gone: the error that brought us here is the one to see
        finally:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
