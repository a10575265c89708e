#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""WebSocket probes of GET /v1/images/NAME/vnc for the tests, with
Python's ssl (no WebSocket library): ws-probe.py URL CACERT TOKENFILE
MODE [N].  TOKENFILE "-" sends no Authorization header (the URL's
?ticket=... authenticates, as a browser's WebSocket does).

  echo        upgrade (checking 101, Sec-WebSocket-Accept and the
              "binary" subprotocol), read the greeting (a binary frame),
              send a masked frame and read it back (tests/helpers/
              fake-qemu.py echoes): "ECHO OK"
  unmasked    send an unmasked frame: "CLOSE 1002" expected
  text        send a text frame: "CLOSE 1003"
  big         announce a 2^40-byte frame: "CLOSE 1009"
  hold N      open N upgrades and hold them; print each status line
"""
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import urllib.parse

url, cacert, token_file, mode = sys.argv[1:5]
token = open(token_file).read().strip() if token_file != "-" else None
u = urllib.parse.urlparse(url)
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def upgrade():
    ctx = ssl.create_default_context(cafile=cacert)
    ctx.check_hostname = False
    raw = socket.create_connection((u.hostname, u.port), timeout=30)
    s = ctx.wrap_socket(raw)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: binary\r\n%s\r\n" %
               (u.path + ("?" + u.query if u.query else ""), u.netloc, key,
                "Authorization: Bearer %s\r\n" % token if token else "")).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        c = s.recv(1)
        if not c:
            break
        head += c
    lines = head.decode().split("\r\n")
    hdr = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip()
           for l in lines[1:] if ":" in l}
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    return s, lines[0], hdr, want


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            sys.exit("closed after %d of %d bytes" % (len(b), n))
        b += c
    return b


def read_frame(s):
    h = recv_exact(s, 2)
    if h[1] & 0x80:
        sys.exit("the server masked a frame")
    n = h[1] & 0x7f
    if n == 126:
        n = struct.unpack(">H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", recv_exact(s, 8))[0]
    return h[0] & 0x0f, recv_exact(s, n)


def frame(op, payload, mask=True, length=None):
    n = len(payload) if length is None else length
    h = bytes([0x80 | op])
    m = 0x80 if mask else 0
    if n < 126:
        h += bytes([m | n])
    elif n < 65536:
        h += bytes([m | 126]) + struct.pack(">H", n)
    else:
        h += bytes([m | 127]) + struct.pack(">Q", n)
    if not mask:
        return h + payload
    k = os.urandom(4)
    return h + k + bytes(b ^ k[i % 4] for i, b in enumerate(payload))


def opened():
    s, status, hdr, want = upgrade()
    if not status.startswith("HTTP/1.1 101"):
        sys.exit("not upgraded: " + status)
    if hdr.get("sec-websocket-accept") != want:
        sys.exit("bad Sec-WebSocket-Accept: %r" % hdr)
    if hdr.get("sec-websocket-protocol") != "binary":
        sys.exit("no binary subprotocol: %r" % hdr)
    op, data = read_frame(s)
    if op != 2 or data != b"RFB 003.008\n":
        sys.exit("greeting: %d %r" % (op, data))
    return s


def expect_close(s):
    while True:
        op, data = read_frame(s)
        if op == 8:
            print("CLOSE %d" % struct.unpack(">H", data[:2])[0])
            return


if mode == "echo":
    s = opened()
    msg = os.urandom(70000)  # a 64-bit length; echoed in pieces
    s.sendall(frame(2, msg))
    s.sendall(frame(9, b"ping!"))
    got, pong = b"", False
    while len(got) < len(msg) or not pong:
        op, data = read_frame(s)
        if op == 10:
            pong = data == b"ping!"
        elif op == 2:
            got += data
    if got != msg:
        sys.exit("echo differs")
    s.sendall(frame(8, struct.pack(">H", 1000)))
    expect_close(s)
    print("ECHO OK")
elif mode == "unmasked":
    s = opened()
    s.sendall(frame(2, b"x", mask=False))
    expect_close(s)
elif mode == "text":
    s = opened()
    s.sendall(frame(1, b"x"))
    expect_close(s)
elif mode == "big":
    s = opened()
    s.sendall(frame(2, b"", length=1 << 40))
    expect_close(s)
elif mode == "hold":
    held = []
    for i in range(int(sys.argv[5])):
        s, status, hdr, want = upgrade()
        print(status)
        held.append(s)
