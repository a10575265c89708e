#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A fault-injecting HTTPS proxy for the network-fault tests
# (tests/faults/045-network-faults.sh, docs/faults.md).
#
# It terminates TLS with its own certificate, forwards each HTTP/1.1
# request to the real vmferry-server over TLS (trusting the server's
# cert.pem), reads the whole answer, and then, on command, damages it.
# Keep-alive and concurrent connections work both ways (one upstream
# connection per client connection).
#
#   faultproxy.py CERT KEY UPSTREAM_PORT UPSTREAM_CA READY_FILE [SEED]
#
# READY_FILE gets "PROXY_PORT CONTROL_PORT".  The control port is plain
# HTTP on 127.0.0.1:
#   GET /set?kind=K[&n=N][&p=P][&match=REGEX][&stall=SECS]
#       kind: drop (close mid-body), drop-request (close without an
#       answer, the request never forwarded), drop-after (forward, then
#       close without an answer: the server did the work), stall (wait
#       SECS before answering, mid-body when there is a body), 500, 503,
#       truncate (announce the full length, send less, close), flip
#       (flip one bit of the body), range (206 with a Content-Range
#       other than asked), range-bytes (the asked Content-Range, the
#       bytes of another range), mix (each fault a random one of these)
#       n: fault the next N matching requests (default: no limit)
#       p: fault each matching request with probability P (default 1)
#       match: regex searched in "METHOD PATH" (default: everything)
#   GET /clear     heal: no more faults
#   GET /stats     JSON: requests, faults injected per kind
import http.client, http.server, json, os, random, re, socket, ssl, sys
import threading, time, urllib.parse

cert, key, up_port, up_ca, ready = sys.argv[1:6]
seed = int(sys.argv[6]) if len(sys.argv) > 6 else 1
up_port = int(up_port)

KINDS = ["drop", "drop-request", "drop-after", "stall", "500", "503",
         "truncate", "flip", "range", "range-bytes"]

lock = threading.Lock()  # protects rule, rng, stats
rng = random.Random(seed)
rule = None
stats = {"requests": 0, "faults": {}}

up_ctx = ssl.create_default_context(cafile=up_ca)
up_ctx.check_hostname = False  # the server's cert names localhost


def pick(method, path):
    """The fault for this request, or None (under the lock)."""
    global rule
    with lock:
        stats["requests"] += 1
        r = rule
        if not r or not re.search(r["match"], method + " " + path):
            return None, 0
        if r["n"] is not None and r["n"] <= 0:
            return None, 0
        if rng.random() >= r["p"]:
            return None, 0
        if r["n"] is not None:
            r["n"] -= 1
        kind = r["kind"]
        if kind == "mix":
            kind = rng.choice(KINDS)
        stats["faults"][kind] = stats["faults"].get(kind, 0) + 1
        return kind, r["stall"]


def randint(a, b):
    with lock:
        return rng.randint(a, b)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def log_message(self, *a):
        pass

    def upstream(self, method, path, headers, body):
        for attempt in range(2):
            if getattr(self, "up", None) is None:
                self.up = http.client.HTTPSConnection(
                    "127.0.0.1", up_port, context=up_ctx, timeout=120)
            try:
                self.up.request(method, path, body=body, headers=headers)
                resp = self.up.getresponse()
                data = resp.read()
                return resp, data
            except (OSError, http.client.HTTPException):
                self.up.close()
                self.up = None
                if attempt == 1 or method != "GET":
                    raise
        raise OSError("unreachable")

    def close_now(self):
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def answer(self, status, headers, body, kind, stall):
        head_only = self.command == "HEAD"
        self.send_response(status)
        for k, v in headers:
            if k.lower() in ("connection", "keep-alive", "transfer-encoding"):
                continue
            self.send_header(k, v)
        self.end_headers()
        if head_only:
            return
        if kind == "drop" or kind == "truncate":
            cut = randint(0, max(0, len(body) - 1)) if body else 0
            self.wfile.write(body[:cut])
            return self.close_now()
        if kind == "stall":
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            time.sleep(stall)
            self.wfile.write(body[half:])
            return
        self.wfile.write(body)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        kind, stall = pick(self.command, self.path)
        if kind == "drop-request":
            return self.close_now()
        if kind == "stall" and self.command != "GET":
            time.sleep(stall)  # before forwarding: the request stalls
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "connection", "keep-alive")}
        want = self.headers.get("Range")
        if kind == "range-bytes" and want:
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", want)
            if m and int(m.group(1)) > 0:
                a, b = int(m.group(1)), int(m.group(2))
                s = randint(1, a) if a < 4096 else randint(1, 4096)
                hdrs["Range"] = "bytes=%d-%d" % (a - s, b - s)
        try:
            resp, data = self.upstream(self.command, self.path, hdrs, body)
        except (OSError, http.client.HTTPException):
            return self.close_now()
        if kind == "drop-after":
            return self.close_now()
        status, headers = resp.status, resp.getheaders()
        if kind in ("500", "503"):
            status = int(kind)
            data = b'{"error": "injected by faultproxy", "status": %s}\n' % (
                kind.encode())
            headers = [("Content-Type", "application/json"),
                       ("Content-Length", str(len(data)))]
        elif kind == "flip" and data:
            i = randint(0, len(data) - 1)
            data = bytearray(data)
            data[i] ^= 1 << randint(0, 7)
            data = bytes(data)
        elif kind == "range" and status == 206:
            out = []
            for k, v in headers:
                m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", v)
                if k.lower() == "content-range" and m:
                    a, b, t = (int(x) for x in m.groups())
                    d = randint(1, 4096)
                    v = "bytes %d-%d/%d" % (a + d, b + d, t + d)
                out.append((k, v))
            headers = out
        elif kind == "range-bytes" and status == 206 and want:
            headers = [(k, ("bytes " + want[6:] + v[v.index("/"):])
                        if k.lower() == "content-range" else v)
                       for k, v in headers]
        self.answer(status, headers, data, kind, stall)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = handle_any


class Control(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        global rule
        u = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        code, out = 200, {}
        with lock:
            if u.path == "/set" and (q.get("kind") in KINDS + ["mix"]):
                rule = {"kind": q["kind"],
                        "n": int(q["n"]) if "n" in q else None,
                        "p": float(q.get("p", 1)),
                        "match": q.get("match", ""),
                        "stall": float(q.get("stall", 35))}
                out = dict(rule)
            elif u.path == "/clear":
                rule = None
            elif u.path == "/stats":
                out = json.loads(json.dumps(stats))
                out["rule"] = rule
            else:
                code, out = 400, {"error": "bad control request"}
        body = (json.dumps(out) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


srv = Server(("127.0.0.1", 0), Proxy)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
ctl = Server(("127.0.0.1", 0), Control)
threading.Thread(target=ctl.serve_forever, daemon=True).start()
with open(ready + ".tmp", "w") as f:
    f.write("%d %d\n" % (srv.server_address[1], ctl.server_address[1]))
os.rename(ready + ".tmp", ready)
srv.serve_forever()
