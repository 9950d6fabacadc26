"""Drives Debian's headless chromium over the DevTools protocol on a pipe
(devtools.py: --remote-debugging-pipe, nothing but the standard library).

usage: cdp.py CHROMIUM URL COOKIE_NAME COOKIE_VALUE SCREENSHOT.png
Sets the cookie for URL's origin, loads URL, prints one JSON object with
what the page shows (see EXPRESSION) and writes a PNG screenshot.
"""
import json, os, sys, urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devtools import Browser

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
  abuse: [...document.querySelectorAll('tr.abuse-login')].map(r => Object.assign({cells: [...r.cells].map(c => c.textContent)}, r.dataset)),
  images: document.querySelectorAll('img').length,
  text: document.body.innerText,
})"""

b = Browser(chromium)
try:
    s = b.tab()
    b.send("Network.enable", session=s)
    origin = "{0.scheme}://{0.netloc}/".format(urllib.parse.urlsplit(url))
    ok = b.send("Network.setCookie", {"name": cookie_name, "value": cookie_value, "url": origin, "httpOnly": True, "sameSite": "Strict"}, s)
    if not ok.get("success", True):
        sys.exit("chromium refused the cookie")
    b.load(url, s)
    page = json.loads(b.evaluate(EXPRESSION, s))
    b.screenshot(s, shot)
    print(json.dumps(page))
finally:
    b.close()
