#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A real RFB (VNC) handshake and one whole framebuffer, for the VNC
tunnel's tests: rfb-check.py unix:PATH | HOST:PORT.

RFB 3.8, security type None (1), ClientInit (shared), ServerInit: the
size must be a sane display's.  Then SetEncodings [Raw] and a
non-incremental FramebufferUpdateRequest for the whole screen: the
updates' raw rectangles must carry exactly width x height pixels of
bytes-per-pixel bytes each (read, not trusted).  Prints one line:
"RFB OK WIDTHxHEIGHT bpp=N pixels=N bytes=N name=NAME"; exits 1 with the
reason on anything else.
"""
import socket
import struct
import sys
import time

SANE = {(640, 480), (720, 400), (800, 600), (1024, 768), (1280, 800),
        (1280, 1024), (640, 400), (320, 200)}


def fail(msg):
    print("RFB FAIL: " + msg)
    sys.exit(1)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            fail("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def connect(where):
    if where.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(where[5:])
    else:
        host, port = where.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
    s.settimeout(60)
    return s


def main():
    s = connect(sys.argv[1])
    version = recv_exact(s, 12)
    if not version.startswith(b"RFB 003."):
        fail("not an RFB server: %r" % version)
    s.sendall(b"RFB 003.008\n")
    n = recv_exact(s, 1)[0]
    if n == 0:
        ln = struct.unpack(">I", recv_exact(s, 4))[0]
        fail("refused: %r" % recv_exact(s, ln))
    types = recv_exact(s, n)
    if 1 not in types:
        fail("no security type None: %r" % list(types))
    s.sendall(b"\x01")
    if struct.unpack(">I", recv_exact(s, 4))[0] != 0:
        fail("SecurityResult: failed")
    s.sendall(b"\x01")  # ClientInit: shared
    w, h = struct.unpack(">HH", recv_exact(s, 4))
    pf = recv_exact(s, 16)
    bpp = pf[0]
    ln = struct.unpack(">I", recv_exact(s, 4))[0]
    name = recv_exact(s, ln).decode(errors="replace")
    if (w, h) not in SANE:
        fail("display size %dx%d is not a sane one" % (w, h))
    if bpp not in (8, 16, 32):
        fail("bits per pixel %d" % bpp)
    s.sendall(struct.pack(">BBHi", 2, 0, 1, 0))  # SetEncodings [Raw]
    s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    pixels = nbytes = 0
    deadline = time.time() + 60
    while pixels < w * h:
        if time.time() > deadline:
            fail("only %d of %d pixels in 60 s" % (pixels, w * h))
        mtype = recv_exact(s, 1)[0]
        if mtype == 2:  # Bell
            continue
        if mtype == 3:  # ServerCutText
            recv_exact(s, 3)
            recv_exact(s, struct.unpack(">I", recv_exact(s, 4))[0])
            continue
        if mtype == 1:  # SetColourMapEntries
            _, _, k = struct.unpack(">BHH", recv_exact(s, 5))
            recv_exact(s, 6 * k)
            continue
        if mtype != 0:
            fail("unexpected server message %d" % mtype)
        _, nrect = struct.unpack(">BH", recv_exact(s, 3))
        for _ in range(nrect):
            x, y, rw, rh, enc = struct.unpack(">HHHHi", recv_exact(s, 12))
            if enc != 0:
                fail("encoding %d, not Raw" % enc)
            if x + rw > w or y + rh > h:
                fail("rectangle %dx%d+%d+%d outside the display" %
                     (rw, rh, x, y))
            data = recv_exact(s, rw * rh * bpp // 8)
            pixels += rw * rh
            nbytes += len(data)
        if pixels < w * h:  # ask for the rest
            s.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
    if pixels != w * h:
        fail("%d pixels for a %dx%d display" % (pixels, w, h))
    print("RFB OK %dx%d bpp=%d pixels=%d bytes=%d name=%s" %
          (w, h, bpp, pixels, nbytes, name))


main()
