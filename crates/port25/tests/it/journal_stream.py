"""Runs a command with its stdout and stderr connected to journald's stream
socket and JOURNAL_STREAM naming that stream, as systemd does for a
service with StandardError=journal (systemd.exec(5), "$JOURNAL_STREAM"):
the test of port25's native journal logging, without systemd as PID 1.

usage: python3 journal_stream.py IDENTIFIER COMMAND ARGS...
"""
import os
import socket
import sys

ident, argv = sys.argv[1], sys.argv[2:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/run/systemd/journal/stdout")
# identifier, unit id, priority, level prefix, forward to syslog, kmsg, console
s.sendall(f"{ident}\n\n6\n0\n0\n0\n0\n".encode())
fd = s.detach()
os.dup2(fd, 1)
os.dup2(fd, 2)
os.close(fd)
st = os.fstat(2)
os.environ["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
os.execvp(argv[0], argv)
