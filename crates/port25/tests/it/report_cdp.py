"""Opens a port25 report in Debian's headless chromium over the DevTools
pipe (as cdp.py does) at a given viewport width, prints what the page laid
out (JSON) and writes a full-page PNG screenshot.

usage: report_cdp.py CHROMIUM URL WIDTH SCREENSHOT.png
"""
import base64, json, os, subprocess, sys, tempfile, time

chromium, url, width, shot = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

EXPRESSION = r"""JSON.stringify((() => {
  const vw = document.documentElement.clientWidth;
  const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, width: r.width, height: r.height}; };
  const h1 = document.querySelector('h1');
  return {
    viewport: vw,
    scroll_width: document.documentElement.scrollWidth,
    after_h1: h1 && h1.nextElementSibling ? h1.nextElementSibling.id : null,
    first_chart_after_table1: (() => {
      const t1 = document.getElementById('table1');
      const fig = document.querySelector('figure.chart');
      return !!(t1 && fig && (t1.compareDocumentPosition(fig) & Node.DOCUMENT_POSITION_FOLLOWING));
    })(),
    table1: [...document.querySelectorAll('#table1 tr')].map(r => [...r.children].map(c => c.textContent)),
    table1_box: box(document.querySelector('#table1 .scroll') || document.body),
    figures: [...document.querySelectorAll('figure.chart')].map(f => {
      const svg = f.querySelector('svg');
      const bbox = e => { try { const b = e.getBBox(); return b.width > 0 && b.height > 0; } catch (_) { return false; } };
      return {
        id: svg.id,
        box: box(svg),
        x_title: [...svg.querySelectorAll('.axis-title.x')].filter(bbox).map(t => t.textContent),
        y_title: [...svg.querySelectorAll('.axis-title.y')].filter(bbox).map(t => t.textContent),
        markers: [...svg.querySelectorAll('line.marker')].map(l => l.dataset.day),
        marker_labels: [...svg.querySelectorAll('.marker-label')].filter(bbox).map(t => t.textContent),
        marks: svg.querySelectorAll('.mark').length,
        caption: (f.querySelector('figcaption') || {}).textContent || null,
        caption_box: f.querySelector('figcaption') ? box(f.querySelector('figcaption')) : null,
      };
    }),
    wider_than_viewport: [...document.body.querySelectorAll('*')]
      .filter(e => !e.closest('.scroll') && !(e.closest('svg') && e.tagName.toLowerCase() !== 'svg'))
      .filter(e => e.getBoundingClientRect().right > vw + 1)
      .map(e => e.tagName + (e.id ? '#' + e.id : '')).slice(0, 10),
  };
})())"""

to_chrome_r, to_chrome_w = os.pipe()
from_chrome_r, from_chrome_w = os.pipe()


def child_fds():
    a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
    os.dup2(a, 3)
    os.dup2(b, 4)


profile = tempfile.mkdtemp(prefix="port25-chromium-")
proc = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars", "--remote-debugging-pipe",
     "--user-data-dir=" + profile, "--window-size=%d,2000" % width, "about:blank"],
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
    # A phone is a narrow viewport that honours <meta name=viewport>.
    send("Emulation.setDeviceMetricsOverride",
         {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}, s)
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
