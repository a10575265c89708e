#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Version history (CLI and API) after three commits; a commit naming
# blocks the store lacks is 409 and lists them; a commit without the
# write grant is 403; an oversized body is 413.  The refused commits
# leave the current version untouched.
source "$(dirname "$0")/../lib.sh"
requires curl python3

BS=65536
make_image "$T/data/v1.img" $((20 * BS + 1000)) 15
start_server "$T/srv"
import_image demo "$T/data/v1.img"
U=$SERVER_URL/v1/images/demo

# v2: blocks 2 and 5 changed, block 9 zeroed; m2 its manifest, m2.blocks/
# the changed blocks; want.json what the history should say of it.
python3 - "$T/data/v1.img" "$T" "$BS" <<'PY'
import hashlib, json, os, struct, sys
d, t, bs = bytearray(open(sys.argv[1], "rb").read()), sys.argv[2], int(sys.argv[3])
n = (len(d) + bs - 1) // bs
def hashes(img):
    return [bytes(32) if img[i*bs:(i+1)*bs] == bytes(len(img[i*bs:(i+1)*bs]))
            else hashlib.sha256(img[i*bs:(i+1)*bs]).digest() for i in range(n)]
old = hashes(d)
for b in (2, 5):
    d[b*bs:b*bs+64] = os.urandom(64)
d[9*bs:10*bs] = bytes(bs)
new = hashes(d)
os.makedirs(t + "/m2.blocks")
for b in (2, 5):
    open(f"{t}/m2.blocks/{new[b].hex()}", "wb").write(d[b*bs:(b+1)*bs])
hdr = struct.pack("<8sIIQQQ", b"VMFMANI1", 1, bs, len(d), n, 0) + bytes(24)
open(t + "/m2", "wb").write(hdr + b"".join(new))
changed = [i for i in range(n) if old[i] != new[i]]
added = sum(min(bs, len(d) - i*bs) for i in changed if new[i] != bytes(32))
v1 = [i for i in range(n) if old[i] != bytes(32)]
json.dump({"v1": [len(v1), sum(min(bs, len(d) - i*bs) for i in v1)],
           "v2": [len(changed), added]}, open(t + "/want.json", "w"))
PY
req() { # req METHOD URL [curl args]: sets CODE; the body is in $T/body
	local m=$1 url=$2
	shift 2
	CODE=$(scurl -X "$m" -o "$T/body" -w '%{http_code}' "$@" "$url")
}
j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/body" "$1"; }
expect() { # expect CODE WHAT
	[ "$CODE" = "$1" ] || fail "$2: HTTP $CODE, want $1: $(cat "$T/body")"
	if [ "$1" -ge 400 ]; then
		[ "$(j 'd["status"]')" = "$1" ] || fail "$2: not a JSON error"
	fi
}
current() { scurl "$U" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
commit() { # commit ID [curl args]
	local id=$1
	shift
	req POST "$U/versions" --data-binary @"$T/m2" -H "Vmferry-Commit-Id: $id" \
		-H "Vmferry-Base-Version: $(current)" "$@"
}

# Before its blocks are uploaded: 409 listing exactly the two missing.
commit versions-commit-000001
expect 409 "commit with missing blocks"
[ "$(j 'd["reason"], d["missing_blocks"], sorted(d["missing"])')" = \
	"('missing_blocks', 2, $(ls "$T/m2.blocks" | sort | python3 -c 'import sys; print(sorted(sys.stdin.read().split()))'))" ] ||
	fail "missing list: $(cat "$T/body")"
[ "$(current)" = 1 ] || fail "missing blocks made a version"

# Without the write grant: 403; oversized: 413.
RO=$("$VMFERRY_SERVER" token add "$SERVER_DIR" --name ro --read demo 2>/dev/null)
CODE=$(curl -sS --cacert "$CACERT" -H "Authorization: Bearer $RO" -o "$T/body" -w '%{http_code}' \
	--data-binary @"$T/m2" -H "Vmferry-Commit-Id: versions-commit-000002" \
	-H "Vmferry-Base-Version: 1" "$U/versions")
expect 403 "commit without the write grant"
req POST "$U/versions" -H "Vmferry-Commit-Id: versions-commit-000003" \
	-H "Vmferry-Base-Version: 1" -H "Content-Length: 999999999999999" --data-binary @"$T/m2"
expect 413 "oversized commit"
head -c 5000 /dev/zero | tr '\0' x >"$T/big"
req POST "$U/lease" --data-binary @"$T/big"
expect 413 "oversized lease request"
[ "$(current)" = 1 ] || fail "a refused commit made a version"

# Upload, commit: version 2; then import: version 3.
for f in "$T"/m2.blocks/*; do
	req PUT "$SERVER_URL/v1/blocks/$(basename "$f")" --data-binary @"$f"
	expect 201 "upload"
done
commit versions-commit-000004
expect 201 "commit"
import_image demo "$T/data/v1.img"
[ "$(current)" = 3 ] || fail "import: version $(current)"

# The history, from the API...
req GET "$U/versions"
expect 200 "history"
python3 - "$T/body" "$T/want.json" <<'PY' || fail "history: $(cat "$T/body")"
import json, sys, time
d, w = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
v = d["versions"]
assert d["name"] == "demo" and [e["version"] for e in v] == [1, 2, 3]
assert [e["author"] for e in v] == ["import", "admin", "import"]
assert [v[0]["blocks_changed"], v[0]["bytes_added"]] == w["v1"]
assert [v[1]["blocks_changed"], v[1]["bytes_added"]] == w["v2"]
# v3 (= v1's bytes) undoes v2's changes: the same blocks change back.
assert v[2]["blocks_changed"] == w["v2"][0]
assert all(abs(e["time"] - time.time()) < 300 for e in v)
PY
# ... and the command line.
"$VMFERRY_SERVER" versions "$SERVER_DIR" demo >"$T/versions" || fail "versions command"
[ "$(grep -c '^[0-9]' "$T/versions")" = 3 ] || fail "versions: $(cat "$T/versions")"
grep -Eq "^2 .* admin +$(j 'd["versions"][1]["blocks_changed"]') +$(j 'd["versions"][1]["bytes_added"]')$" \
	"$T/versions" || fail "versions line 2: $(cat "$T/versions")"
# A version without its record (an older server): time from the mtime.
rm "$SERVER_DIR/images/demo/versions/1.json"
"$VMFERRY_SERVER" versions "$SERVER_DIR" demo >"$T/versions" || fail "versions command"
grep -Eq '^1 +[0-9T:Z-]+ +- +- +-$' "$T/versions" || fail "old version: $(cat "$T/versions")"
req GET "$U/versions"
[ "$(j 'sorted(d["versions"][0])')" = "['time', 'version']" ] || fail "old version: $(cat "$T/body")"
req GET "$SERVER_URL/v1/images/nosuch/versions"
expect 404 "history of no image"
"$VMFERRY_SERVER" versions "$SERVER_DIR" nosuch 2>/dev/null && fail "versions of no image"
echo ok
