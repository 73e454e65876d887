#!/usr/bin/env python3
"""Drives a troupe-demo started under valgrind (scripts/test-valgrind.part.sh):
waits for its READY lines in LOG, then runs a few clients of each kind
(echo, chat, HTTP, console commands) and checks their answers. Prints a
"drive: ..." line per check passed; exit 0 when every check passed.

    valgrind-drive.py LOG CONSOLE_SOCKET
"""
import re
import socket
import sys
import time

log, sock_path = sys.argv[1], sys.argv[2]


def ready(timeout=120.0):
    """The services' ports from the READY lines (valgrind starts slowly)."""
    end = time.time() + timeout
    ports = {}
    while time.time() < end:
        with open(log) as f:
            for line in f:
                m = re.match(r"READY (\w+) .*:(\d+)/?$", line.strip())
                if m:
                    ports[m.group(1)] = int(m.group(2))
                if line.startswith("READY console"):
                    ports["console"] = 0
        if {"echo", "chat", "http", "console"} <= ports.keys():
            return ports
        time.sleep(0.2)
    raise SystemExit("drive: the demo did not become ready")


def recv_until(s, pred, timeout=30.0):
    s.settimeout(timeout)
    data = b""
    while not pred(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def note(what):
    print("drive: %s" % what, flush=True)


def echo(port):
    for i in range(5):
        with socket.create_connection(("127.0.0.1", port)) as s:
            msg = ("line %d " % i).encode() * (1 + 500 * i) + b"\n"
            s.sendall(msg)
            got = recv_until(s, lambda d: len(d) >= len(msg))
            assert got == msg, "echo mismatch"
    note("echo ok")


def chat(port):
    a = socket.create_connection(("127.0.0.1", port))
    b = socket.create_connection(("127.0.0.1", port))
    for s, nick in ((a, b"alice"), (b, b"bob")):
        s.sendall(b"/nick " + nick + b"\n/join vg\n")
        recv_until(s, lambda d: b"you joined #vg" in d)
    a.sendall(b"hello from alice\n")
    got = recv_until(b, lambda d: b"hello from alice" in d)
    assert b"<alice> hello from alice" in got, "chat broadcast missing"
    b.sendall(b"/crash\n")  # the demo's crash command: bob's actor fails
    recv_until(b, lambda d: False, 10.0)
    a.sendall(b"/quit\n")
    recv_until(a, lambda d: False, 10.0)
    a.close()
    b.close()
    note("chat ok")


def http(port):
    with socket.create_connection(("127.0.0.1", port)) as s:
        for _ in range(3):
            s.sendall(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
            got = recv_until(s, lambda d: b"\r\n\r\n" in d and
                             len(d.split(b"\r\n\r\n", 1)[1]) >=
                             int(re.search(rb"(?i)content-length: *(\d+)",
                                           d).group(1)))
            assert got.startswith(b"HTTP/1.1 200"), "http status"
    note("http ok")


def console():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    recv_until(s, lambda d: b"\n" in d)
    for cmd in (b"stats", b"ps", b"tree", b"conns", b"listeners", b"metrics"):
        s.sendall(cmd + b"\n")
        got = recv_until(s, lambda d: d.endswith(b"\nok\n") or
                         d.startswith(b"error"))
        assert got.endswith(b"\nok\n"), "console %s: %r" % (cmd, got[-80:])
    s.close()
    note("console ok")


ports = ready()
echo(ports["echo"])
chat(ports["chat"])
http(ports["http"])
console()
