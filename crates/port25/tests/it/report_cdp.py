"""Opens a port25 report in Debian's headless chromium (devtools.py) at a
given viewport width, prints what the page laid out (JSON) and writes a
full-page PNG screenshot.

usage: report_cdp.py CHROMIUM URL WIDTH SCREENSHOT.png
"""
import json, os, sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devtools import Browser

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

b = Browser(chromium, width)
try:
    s = b.tab()
    # A phone is a narrow viewport that honours <meta name=viewport>.
    b.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}, s)
    b.load(url, s)
    page = json.loads(b.evaluate(EXPRESSION, s))
    b.screenshot(s, shot)
    print(json.dumps(page))
finally:
    b.close()
