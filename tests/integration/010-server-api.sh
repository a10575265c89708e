#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The read API end to end: import an image (random data and zero runs,
# size not a multiple of the block size), then list, metadata, whole and
# ranged GETs compared byte for byte, the manifest checked block by
# block, caching headers, 416, HEAD, 304 and the request counters.
source "$(dirname "$0")/../lib.sh"
requires curl python3 sha256sum

SIZE=$((5 * 1048576 + 12345))
IMG=$T/data/demo.img
make_image "$IMG" "$SIZE" 7
start_server "$T/srv"
"$VMFERRY_SERVER" import "$SERVER_DIR" demo "$IMG" >"$T/logs/import.log" 2>&1 ||
	fail "import"
grep -q "imported demo version 1: $SIZE bytes" "$T/logs/import.log" ||
	fail "import output: $(cat "$T/logs/import.log")"
BLOCKS=$(((SIZE + 65535) / 65536))
V1=$SERVER_URL/v1/images/demo/versions/1

# List and metadata (jq-free: python reads the JSON).
scurl "$SERVER_URL/v1/images" >"$T/list.json"
python3 - "$T/list.json" "$SIZE" <<'PY' || fail "image list: $(cat "$T/list.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["images"] == [{"name": "demo", "version": 1, "size": int(sys.argv[2]),
                        "block_size": 65536, "lease": None}], d
PY
scurl -D "$T/meta.hdr" "$SERVER_URL/v1/images/demo" >"$T/meta.json"
grep -qi '^cache-control: no-cache' "$T/meta.hdr" || fail "metadata is cached"
python3 - "$T/meta.json" "$SIZE" "$BLOCKS" <<'PY' || fail "metadata: $(cat "$T/meta.json")"
import json, sys
d = json.load(open(sys.argv[1]))
size, blocks = int(sys.argv[2]), int(sys.argv[3])
assert (d["name"], d["version"], d["size"], d["block_size"]) == ("demo", 1, size, 65536)
assert d["blocks"] == blocks and d["versions"] == [1] and d["policy"] == {}
assert d["manifest_size"] == 64 + 32 * blocks
PY

# The whole image, by curl, on the IP and on the DNS name in the cert.
WANT=$(sha256sum <"$IMG" | cut -d' ' -f1)
[ "$(scurl "$V1/data" | sha256sum | cut -d' ' -f1)" = "$WANT" ] || fail "GET data differs"
[ "$(scurl "https://localhost:$SERVER_PORT/v1/images/demo/versions/1/data" |
	sha256sum | cut -d' ' -f1)" = "$WANT" ] || fail "GET via localhost differs"

# The manifest: its size, header, and every entry against the image.
scurl -D "$T/man.hdr" -o "$T/manifest" "$V1/manifest"
MSHA=$(sha256sum <"$T/manifest" | cut -d' ' -f1)
python3 - "$T/manifest" "$IMG" <<'PY' || fail "manifest does not describe the image"
import hashlib, struct, sys
m, img = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
magic, fmt, bs, size, n, ver = struct.unpack_from("<8sIIQQQ", m)
assert (magic, fmt, bs, size, ver) == (b"VMFMANI1", 1, 65536, len(img), 1)
assert n == (size + bs - 1) // bs and len(m) == 64 + 32 * n and m[40:64] == bytes(24)
zero = 0
for i in range(n):
    blk, h = img[i * bs:(i + 1) * bs], m[64 + 32 * i:96 + 32 * i]
    if blk == bytes(len(blk)):
        assert h == bytes(32), i; zero += 1
    else:
        assert h == hashlib.sha256(blk).digest(), i
assert 0 < zero < n, zero
PY
for h in man.hdr; do
	grep -qi "^etag: \"$MSHA\"" "$T/$h" || fail "ETag is not the manifest's SHA-256"
	grep -qi '^cache-control: public, max-age=31536000, immutable' "$T/$h" || fail "Cache-Control"
	grep -qi '^accept-ranges: bytes' "$T/$h" || fail "Accept-Ranges"
	grep -qi '^content-type: application/octet-stream' "$T/$h" || fail "Content-Type"
done

# Random ranges over one kept-alive connection (Python's http.client on
# OpenSSL verifies the certificate as its own trust anchor).
python3 - "$SERVER_PORT" "$CACERT" "$ADMIN_TOKEN_FILE" "$IMG" "$MSHA" <<'PY' || fail "ranges"
import http.client, random, ssl, sys
port, ca, tokf, imgf, msha = sys.argv[1:6]
img, tok = open(imgf, "rb").read(), open(tokf).read().strip()
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx)
rng, size = random.Random(3), len(img)
for i in range(400):
    kind = rng.choice("ab-")
    a = rng.randrange(size)
    if kind == "a":
        b = min(size - 1, a + rng.choice([0, 1, 4095, 65535, 65536, 200000, size]))
        spec, want = f"{a}-{b}", (a, b)
    elif kind == "b":
        spec, want = f"{a}-", (a, size - 1)
    else:
        n = rng.randrange(1, size + 10)
        spec, want = f"-{n}", (max(0, size - n), size - 1)
    c.request("GET", "/v1/images/demo/versions/1/data",
              headers={"Authorization": "Bearer " + tok, "Range": "bytes=" + spec})
    r = c.getresponse(); body = r.read()
    assert r.status == 206, (spec, r.status)
    assert r.getheader("Content-Range") == f"bytes {want[0]}-{want[1]}/{size}", spec
    assert int(r.getheader("Content-Length")) == len(body) == want[1] - want[0] + 1
    assert body == img[want[0]:want[1] + 1], spec
    assert r.getheader("ETag") == f'"{msha}"'
PY

# Ranges of the manifest, 416, HEAD, 304.
[ "$(scurl -r 64-95 "$V1/manifest" | od -An -tx1 | tr -d ' \n')" = \
	"$(dd if="$T/manifest" bs=1 skip=64 count=32 2>/dev/null | od -An -tx1 | tr -d ' \n')" ] ||
	fail "manifest range"
code=$(scurl -o "$T/416.json" -D "$T/416.hdr" -w '%{http_code}' -r "$SIZE-" "$V1/data")
[ "$code" = 416 ] || fail "range past the end gave $code"
grep -qi "^content-range: bytes \*/$SIZE" "$T/416.hdr" || fail "416 Content-Range"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["status"]==416 and d["error"]' "$T/416.json" ||
	fail "416 body is not JSON"
scurl -I "$V1/data" >"$T/head.hdr"
grep -q '^HTTP/1.1 200' "$T/head.hdr" && grep -qi "^content-length: $SIZE" "$T/head.hdr" ||
	fail "HEAD: $(cat "$T/head.hdr")"
code=$(scurl -o /dev/null -w '%{http_code}' -H "If-None-Match: \"$MSHA\"" "$V1/data")
[ "$code" = 304 ] || fail "If-None-Match gave $code"

# Counters: one range GET counts one data request and exactly its bytes.
d0=$(server_stat data_requests) b0=$(server_stat data_bytes) m0=$(server_stat manifest_requests)
scurl -r 1000-2999 "$V1/data" >/dev/null
scurl -r 0-63 "$V1/manifest" >/dev/null
[ "$(server_stat data_requests)" = $((d0 + 1)) ] || fail "data_requests did not move by 1"
[ "$(server_stat data_bytes)" = $((b0 + 2000)) ] || fail "data_bytes did not move by 2000"
[ "$(server_stat manifest_requests)" = $((m0 + 1)) ] || fail "manifest_requests"

# Many clients at once (wait for them by pid: the server is a child too).
pids=()
for i in 1 2 3 4 5 6 7 8; do
	(scurl "$V1/data" | sha256sum | cut -d' ' -f1 >"$T/par.$i") &
	pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3 4 5 6 7 8; do
	[ "$(cat "$T/par.$i")" = "$WANT" ] || fail "parallel GET $i differs"
done

# A policy appears in the metadata.
echo '{"expiry_seconds": 86400}' >"$SERVER_DIR/images/demo/policy.json"
scurl "$SERVER_URL/v1/images/demo" | grep -q '"policy":{"expiry_seconds":86400}' ||
	fail "policy not in metadata"
# A clean stop: SIGTERM gives exit 0 (under ASan: no error, no leak).
kill "$SERVER_PID"
wait "$SERVER_PID" || fail "vmferry-server exited with status $? on SIGTERM"
SERVER_PID=
echo "ok"
