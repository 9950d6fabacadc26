"""Reads the abuse notices `port25 report notices` wrote with Python's own
mailbox and email packages (a real ARF consumer would), and prints per
file: messages, their recipients, Source-IPs, Incidents and part types.

usage: report_notices.py FILE.mbox...
"""
import email, email.policy, json, mailbox, sys

out = {}
for path in sys.argv[1:]:
    msgs = []
    for m in mailbox.mbox(path, factory=None):
        m = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
        assert m.get_content_type() == "multipart/report", m.get_content_type()
        assert m.get_param("report-type") == "feedback-report"
        parts = list(m.iter_parts())
        fb = parts[1]
        assert fb.get_content_type() == "message/feedback-report", fb.get_content_type()
        # The feedback fields are the part's body (a header block).
        raw = fb.get_payload()
        if isinstance(raw, list):
            fields = dict(raw[0].items())
            for extra in raw[1:]:
                fields.update(extra.items())
        else:
            fields = dict(email.message_from_string(raw).items())
        msgs.append({
            "to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
            "types": [p.get_content_type() for p in parts],
            "source_ip": fields.get("Source-IP"), "incidents": int(fields.get("Incidents")),
            "feedback_type": fields.get("Feedback-Type"), "arrival": fields.get("Arrival-Date"),
            "text": parts[0].get_content(),
            "headers": parts[2].get_payload() if len(parts) > 2 else None,
        })
    out[path] = msgs
print(json.dumps(out))
