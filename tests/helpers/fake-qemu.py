#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A stand-in for qemu-system-x86_64 in the server's VM tests that need
no guest: it takes QEMU's options, never touches the disk, answers QMP
(the greeting, {"return": {}} to each command; system_powerdown and quit
end it) and serves "VNC" on the -vnc unix:PATH socket: each client gets
the RFB greeting "RFB 003.008\\n", then whatever it sends is echoed back.
Its "serial console": each byte read from stdin is written to stdout as
"<xx>" (two hex digits), so a test sees exactly which bytes arrived
(control characters too), whatever the chunks they came in.
"""
import json
import os
import socket
import sys
import threading

args = sys.argv[1:]
qmp = vnc = None
for i, a in enumerate(args):
    if a == "-qmp":
        qmp = args[i + 1].split(",")[0][len("unix:"):]
    if a == "-vnc":
        vnc = args[i + 1][len("unix:"):]
done = threading.Event()


def listen(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(16)
    return s


def echo(c):
    c.sendall(b"RFB 003.008\n")
    while True:
        data = c.recv(65536)
        if not data:
            return
        c.sendall(data)


def serve_vnc(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def serve_qmp(s):
    while True:
        c, _ = s.accept()
        f = c.makefile("rw")
        f.write(json.dumps({"QMP": {"version": {}, "capabilities": []}}) + "\n")
        f.flush()
        for line in f:
            cmd = json.loads(line).get("execute")
            f.write('{"return": {}}\n')
            f.flush()
            if cmd in ("quit", "system_powerdown"):
                done.set()
                return


def serial():
    while True:
        data = os.read(0, 4096)
        if not data:
            return
        os.write(1, "".join("<%02x>" % b for b in data).encode())


threading.Thread(target=serial, daemon=True).start()
if vnc:
    threading.Thread(target=serve_vnc, args=(listen(vnc),), daemon=True).start()
if qmp:
    threading.Thread(target=serve_qmp, args=(listen(qmp),), daemon=True).start()
print("fake QEMU running", flush=True)
done.wait()
