"""Drives Debian's headless chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands on fd 3, answers on fd 4, NUL-separated
JSON), with nothing but the standard library.

usage: cdp.py CHROMIUM URL COOKIE_NAME COOKIE_VALUE SCREENSHOT.png
Sets the cookie for URL's origin, loads URL, prints one JSON object with
what the page shows (see EXPRESSION) and writes a PNG screenshot.
"""
import base64, json, os, subprocess, sys, tempfile, time, urllib.parse

chromium, url, cookie_name, cookie_value, shot = sys.argv[1:6]

EXPRESSION = r"""JSON.stringify({
  location: location.pathname,
  title: document.title,
  scripts: document.querySelectorAll('script').length,
  xss: typeof window.__xss !== 'undefined',
  operator: (document.getElementById('operator') || {}).textContent || null,
  domains: [...document.querySelectorAll('tr.domain')].map(r => Object.assign({}, r.dataset)),
  still: [...document.querySelectorAll('tr.still')].map(r => r.dataset.login),
  helos: [...document.querySelectorAll('td.helo')].map(td => td.textContent),
  subjects: [...document.querySelectorAll('td.subject')].map(td => td.textContent),
  captures: Object.assign({}, (document.getElementById('captures') || {dataset: {}}).dataset),
  sources: [...document.querySelectorAll('tr.source')].map(r => Object.assign({}, r.dataset)),
  queues: [...document.querySelectorAll('tr.queue')].map(r => Object.assign({}, r.dataset)),
  text: document.body.innerText,
})"""

to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


def child_fds():
    # Through fresh descriptors: a pipe end may already be fd 3 or 4, and
    # dup2 onto itself would keep its close-on-exec flag.
    a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
    os.dup2(a, 3)
    os.dup2(b, 4)


profile = tempfile.mkdtemp(prefix="port25-chromium-")
proc = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-pipe",
     "--user-data-dir=" + profile, "--window-size=1280,2000", "about:blank"],
    preexec_fn=child_fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
os.close(to_chrome_r)
os.close(from_chrome_w)
buf = b""
next_id = 0


def read_message():
    global buf
    while b"\0" not in buf:
        chunk = os.read(from_chrome_r, 1 << 16)
        if not chunk:
            sys.exit("chromium closed the DevTools pipe (did it start? exit code %r)" % proc.poll())
        buf += chunk
    msg, buf = buf.split(b"\0", 1)
    return json.loads(msg)


def send(method, params=None, session=None):
    global next_id
    next_id += 1
    m = {"id": next_id, "method": method, "params": params or {}}
    if session:
        m["sessionId"] = session
    os.write(to_chrome_w, json.dumps(m).encode() + b"\0")
    while True:
        r = read_message()
        if r.get("id") == next_id:
            if "error" in r:
                sys.exit("%s failed: %r" % (method, r["error"]))
            return r["result"]


def evaluate(expr, session):
    return send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)["result"].get("value")


try:
    target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
    s = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    send("Network.enable", session=s)
    origin = "{0.scheme}://{0.netloc}/".format(urllib.parse.urlsplit(url))
    ok = send("Network.setCookie", {"name": cookie_name, "value": cookie_value, "url": origin, "httpOnly": True, "sameSite": "Strict"}, s)
    if not ok.get("success", True):
        sys.exit("chromium refused the cookie")
    send("Page.enable", session=s)
    send("Page.navigate", {"url": url}, s)
    deadline = time.time() + 30
    while True:
        state = evaluate("document.readyState + ' ' + location.href", s) or ""
        if state.startswith("complete") and "about:blank" not in state:
            break
        if time.time() > deadline:
            sys.exit("page did not load: %r" % state)
        time.sleep(0.1)
    page = json.loads(evaluate(EXPRESSION, s))
    png = base64.b64decode(send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, s)["data"])
    with open(shot, "wb") as f:
        f.write(png)
    print(json.dumps(page))
    send("Browser.close")
finally:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
