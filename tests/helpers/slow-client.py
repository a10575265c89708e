#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Abusive clients for the server limit tests (018-server-limits.sh).

  slow-client.py head PORT CACERT INTERVAL MAX
      send a request head one line per INTERVAL seconds; print the
      seconds until the server closed the connection; exit 1 if it was
      still open after MAX seconds
  slow-client.py body PORT CACERT TOKEN INTERVAL MAX
      the same with a PUT body, one byte per INTERVAL seconds
  slow-client.py silent PORT MAX
      open a TCP connection and send nothing, not even a TLS hello;
      print the seconds until the server closed it (exit 1 after MAX)
  slow-client.py hold PORT CACERT N SECONDS
      open N TLS connections from 127.0.0.1 and hold them SECONDS;
      print how many completed their handshake and stayed open
"""
import socket
import ssl
import sys
import time


def connect(port, cacert, src="127.0.0.1"):
    ctx = ssl.create_default_context(cafile=cacert)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=10,
                                   source_address=(src, 0))
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def closed(s):
    """True once the server has closed s (reads until EOF or error)."""
    s.settimeout(0.05)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except (socket.timeout, ssl.SSLWantReadError):
        return False
    except (OSError, ssl.SSLError):
        return True


def trickle(s, pieces, interval, limit):
    t0 = time.monotonic()
    for p in pieces:
        try:
            s.sendall(p)
        except (OSError, ssl.SSLError):
            break
        end = time.monotonic() + interval
        while time.monotonic() < end:
            if closed(s):
                print("%.1f" % (time.monotonic() - t0))
                return 0
            time.sleep(0.05)
        if time.monotonic() - t0 > limit:
            print("still open after %.1f s" % (time.monotonic() - t0))
            return 1
    # Sent everything (or a send failed): did the server close?
    end = time.monotonic() + 2
    while time.monotonic() < end:
        if closed(s):
            print("%.1f" % (time.monotonic() - t0))
            return 0
        time.sleep(0.05)
    print("never closed")
    return 1


def main():
    mode = sys.argv[1]
    if mode == "head":
        port, cacert, interval, limit = sys.argv[2:6]
        s = connect(port, cacert)
        pieces = [b"GET /v1/images HTTP/1.1\r\n", b"Host: x\r\n"]
        pieces += [b"X-Slow-%d: y\r\n" % i for i in range(1000)]
        return trickle(s, pieces, float(interval), float(limit))
    if mode == "body":
        port, cacert, token, interval, limit = sys.argv[2:7]
        s = connect(port, cacert)
        head = ("PUT /v1/blocks/%s HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n"
                % ("ab" * 32, token)).encode()
        s.sendall(head)
        return trickle(s, [b"x"] * 100000, float(interval), float(limit))
    if mode == "silent":
        port, limit = sys.argv[2:4]
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        return trickle(s, [b""], float(limit), float(limit))
    if mode == "hold":
        port, cacert, n, secs = sys.argv[2:6]
        socks = []
        for _ in range(int(n)):
            try:
                socks.append(connect(port, cacert))
            except (OSError, ssl.SSLError):
                pass
        time.sleep(0.5)
        print(sum(1 for s in socks if not closed(s)), flush=True)
        time.sleep(float(secs))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
