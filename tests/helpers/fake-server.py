#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A deliberately broken vmferry server for client bad-input tests: serves
# image metadata from a JSON file and a manifest from a file, over HTTPS
# with a certificate from `vmferry-server init`.  It stands in for a
# misbehaving server, so the client's own checks can be tested.
#
#   fake-server.py CERT KEY READY_FILE META_JSON MANIFEST
import http.server, json, os, re, ssl, sys, threading

cert, key, ready, meta_path, man_path = sys.argv[1:6]

class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def send_body(self, code, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if re.fullmatch(r"/v1/images/[^/]+", self.path):
            return self.send_body(200, open(meta_path, "rb").read())
        if self.path.endswith("/manifest"):
            data = open(man_path, "rb").read()
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
            if not m:
                return self.send_body(200, data)
            a, b = int(m.group(1)), min(int(m.group(2)), len(data) - 1)
            return self.send_body(206, data[a:b + 1],
                [("Content-Range", "bytes %d-%d/%d" % (a, b, len(data)))])
        self.send_body(404, b'{"error":"not found","status":404}')

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(ready + ".tmp", "w") as f:
    f.write("%d\n" % srv.server_address[1])
os.rename(ready + ".tmp", ready)
srv.serve_forever()
