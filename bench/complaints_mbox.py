"""Writes N abuse reports into one mbox, deterministically, for
bench/complaints.sh: ARF (RFC 5965) and SpamCop-style plain reports over
36 months (2012-01 to 2014-12), sources in 40.0.0.0/14, the four categories
of docs/report.md mixed 5:3:1:1 (open proxy, direct delivery, authenticated,
other). Also writes geo.csv (the address plan) and truth.json (the counts a
correct report gives).

usage: complaints_mbox.py N OUTDIR
"""
import json, os, random, sys

n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
rng = random.Random(18)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
truth = {"reports": n, "per_category": {"open_proxy": 0, "direct_delivery": 0, "authenticated": 0, "other": 0}, "months": {}}


def report(i):
    y = 2012 + i * 3 // n
    m = (i * 36 // n) % 12
    d = 1 + rng.randrange(28)
    date = "%s, %d %s %d 10:%02d:00 -0300" % ("Mon", d, MONTHS[m], y, rng.randrange(60))
    ip = "40.%d.%d.%d" % (rng.randrange(4), rng.randrange(256), 1 + rng.randrange(254))
    k = rng.randrange(10)
    if k < 5:
        cat, human, received = "open_proxy", "Spam relayed through an open proxy at %s" % ip, "from x ([%s]) by mx with SMTP" % ip
    elif k < 8:
        cat, human, received = "direct_delivery", "Spam sent directly from %s" % ip, "from dsl-%s.dynamic.example ([%s]) by mx with SMTP" % (ip.replace(".", "-"), ip)
    elif k < 9:
        cat, human, received = "authenticated", "Abuse report", "from mail.example ([%s]) (Authenticated sender: bob) by smtp.example with ESMTPSA" % ip
    else:
        cat, human, received = "other", "Abuse report", "from mail.example ([%s]) by mx.example with SMTP" % ip
    truth["per_category"][cat] += 1
    month = "%d-%02d" % (y, m + 1)
    truth["months"][month] = truth["months"].get(month, 0) + 1
    return (
        "From MAILER-DAEMON Mon Jan  1 00:00:00 2012\n"
        "From: reports@spamcop.example\nDate: %s\nSubject: report %d\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain\n\n%s\n\n"
        "--b1\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\nSource-IP: %s\nArrival-Date: %s\n\n"
        "--b1\nContent-Type: text/rfc822-headers\n\nReceived: %s\nSubject: cheap\n\n--b1--\n\n" % (date, i, human, ip, date, received)
    )


with open(os.path.join(out, "complaints.mbox"), "w") as f:
    for i in range(n):
        f.write(report(i))
with open(os.path.join(out, "geo.csv"), "w") as f:
    f.write("40.0.0.0,40.3.255.255,BR\n")
with open(os.path.join(out, "truth.json"), "w") as f:
    json.dump(truth, f, indent=1, sort_keys=True)
