#!/usr/bin/env python3
"""Load generator for submission: each session connects (implicit TLS,
STARTTLS, or plain without AUTH for the MX path), EHLOs, logs in with AUTH PLAIN, sends MSGS messages of SIZE
bytes (0 = none) and quits. PROCS processes run sessions back to back for
SECONDS; prints one JSON line: sessions, messages, failures, sessions/s,
messages/s. Python's own TLS cost is part of the figure, the same for
every configuration compared."""
import json, multiprocessing, smtplib, ssl, sys, time

def worker(args):
    host, port, mode, user, password, msgs, size, seconds = args
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    head = ("From: %s\r\nTo: %s\r\nSubject: bench\r\n\r\n" % (user, user)).encode()
    line = b"x" * 76 + b"\r\n"
    body = head + line * max(0, (size - len(head)) // len(line))
    end = time.monotonic() + seconds
    sessions = messages = failures = 0
    while time.monotonic() < end:
        try:
            if mode == "implicit":
                s = smtplib.SMTP_SSL(host, port, timeout=30, context=ctx)
            else:
                s = smtplib.SMTP(host, port, timeout=30)
                if mode == "starttls":
                    s.starttls(context=ctx)
            s.ehlo("bench.example")
            # mode "plain": no TLS, no AUTH (the MX path), to check this
            # generator against smtp-source (bench/loadgen-check.sh).
            if mode != "plain":
                s.login(user, password)
            for _ in range(msgs):
                s.sendmail(user, [user], body)
                messages += 1
            s.quit()
            sessions += 1
        except Exception as e:
            failures += 1
            if failures < 3:
                print("failure:", repr(e), file=sys.stderr)
    return sessions, messages, failures

def main():
    host, port, mode, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    procs, seconds, msgs, size = int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
    start = time.monotonic()
    with multiprocessing.Pool(procs) as pool:
        results = pool.map(worker, [(host, port, mode, user, password, msgs, size, seconds)] * procs)
    elapsed = time.monotonic() - start
    sessions = sum(r[0] for r in results); messages = sum(r[1] for r in results); failures = sum(r[2] for r in results)
    print(json.dumps({"sessions": sessions, "messages": messages, "failures": failures, "seconds": round(elapsed, 2),
                      "sessions_per_s": round(sessions / elapsed, 1), "messages_per_s": round(messages / elapsed, 1)}))

if __name__ == "__main__":
    main()
