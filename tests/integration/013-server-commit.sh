#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Commit over the API with curl: ask which blocks are missing, PUT them,
# POST the manifest; the new version reads back byte for byte.  A retry
# with the same commit id makes no second version; a stale base gets
# 409; an import while serving is visible at once.
source "$(dirname "$0")/../lib.sh"
requires curl python3 sha256sum

BS=65536
make_image "$T/data/v1.img" $((3 * 1048576 + 777)) 11
start_server "$T/srv"
"$VMFERRY_SERVER" import "$SERVER_DIR" demo "$T/data/v1.img" >/dev/null 2>&1 || fail import
U=$SERVER_URL/v1

# v2: v1 with some blocks changed, one zeroed, and 5000 bytes longer.
python3 - "$T/data/v1.img" "$T/data/v2.img" <<'PY'
import random, sys
d = bytearray(open(sys.argv[1], "rb").read()); r = random.Random(2)
for blk in (0, 7, 20):
    d[blk * 65536 + 100:blk * 65536 + 300] = r.randbytes(200)
d[3 * 65536:4 * 65536] = bytes(65536)
open(sys.argv[2], "wb").write(d + r.randbytes(5000))
PY
# manifest + one file per block (named by hash) + the list of hashes.
mkmanifest() {
	python3 - "$1" "$2" "$BS" <<'PY'
import hashlib, os, struct, sys
img, out, bs = open(sys.argv[1], "rb").read(), sys.argv[2], int(sys.argv[3])
n = (len(img) + bs - 1) // bs
os.makedirs(out + ".blocks", exist_ok=True)
hashes = b""
for i in range(n):
    b = img[i * bs:(i + 1) * bs]
    if b == bytes(len(b)):
        hashes += bytes(32); continue
    h = hashlib.sha256(b).digest(); hashes += h
    open(f"{out}.blocks/{h.hex()}", "wb").write(b)
    open(out + ".hashes", "ab").write(h)
hdr = struct.pack("<8sIIQQQ", b"VMFMANI1", 1, bs, len(img), n, 0) + bytes(24)
open(out, "wb").write(hdr + hashes)
PY
}
upload() { # upload MANIFEST: the blocks the server lacks
	scurl -f --data-binary @"$1.hashes" -o "$T/missing" "$U/blocks/missing" || fail "missing"
	local n=0 h
	for h in $(od -An -v -tx1 "$T/missing" | tr -d ' \n' | fold -w64); do
		code=$(scurl -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$1.blocks/$h" "$U/blocks/$h")
		[ "$code" = 201 ] || fail "PUT block $h: $code"
		n=$((n + 1))
	done
	echo "$n"
}
commit() { # commit MANIFEST ID BASE: prints "STATUS BODY"
	local code
	code=$(scurl -o "$T/commit.json" -w '%{http_code}' --data-binary @"$1" \
		-H "Vmferry-Commit-Id: $2" -H "Vmferry-Base-Version: $3" "$U/images/${4:-demo}/versions")
	echo "$code $(cat "$T/commit.json")"
}
sha() { sha256sum | cut -d' ' -f1; }

mkmanifest "$T/data/v2.img" "$T/m2"
# Before the blocks are there, the commit is refused (409) and lists them.
out=$(commit "$T/m2" commit-two-000000001 1)
[[ $out == "409 "*'"missing_blocks":'* && $out == *'"missing":["'* ]] || fail "commit without blocks: $out"
n=$(upload "$T/m2")
[ "$n" -ge 3 ] && [ "$n" -le 5 ] || fail "uploaded $n blocks, expected only the changed ones"
[ -z "$(upload "$T/m2" | grep -v '^0$')" ] || fail "blocks still missing after upload"
out=$(commit "$T/m2" commit-two-000000001 1)
[ "$out" = '201 {"version":2}' ] || fail "commit: $out"
[ "$(scurl "$U/images/demo/versions/2/data" | sha)" = "$(sha <"$T/data/v2.img")" ] || fail "v2 differs"
[ "$(scurl "$U/images/demo/versions/1/data" | sha)" = "$(sha <"$T/data/v1.img")" ] || fail "v1 changed"
scurl "$U/images/demo/versions/2/manifest" | tail -c +65 | cmp - <(tail -c +65 "$T/m2") ||
	fail "stored manifest differs from the upload"

# The same commit again: the same answer, no version 3.
out=$(commit "$T/m2" commit-two-000000001 1)
[ "$out" = '201 {"version":2}' ] || fail "retry: $out"
scurl "$U/images/demo" | grep -q '"version":2,.*"versions":\[1,2\]' || fail "retry made a version"
# Another commit on the old base: 409 with the current version.
out=$(commit "$T/m2" commit-other-00000001 1)
[[ $out == "409 "*'"current_version":2'* ]] || fail "stale base: $out"
# The same id for a different manifest is refused.
mkmanifest "$T/data/v1.img" "$T/m1"
out=$(commit "$T/m1" commit-two-000000001 2)
[[ $out == "409 "* ]] || fail "reused commit id: $out"

# A new image over the API: base 0.
mkmanifest "$T/data/v1.img" "$T/m1b"
[ "$(upload "$T/m1b")" = 0 ] || fail "v1 blocks should all be present"
out=$(commit "$T/m1b" new-image-000000001 0 fresh)
[ "$out" = '201 {"version":1}' ] || fail "new image: $out"
[ "$(scurl "$U/images/fresh/versions/1/data" | sha)" = "$(sha <"$T/data/v1.img")" ] || fail "fresh differs"

# Import while serving, then commit on top of it over the API.
"$VMFERRY_SERVER" import "$SERVER_DIR" demo "$T/data/v1.img" >"$T/logs/import2.log" 2>&1 || fail import2
grep -q "version 3: .* 0 new" "$T/logs/import2.log" || fail "import2: $(cat "$T/logs/import2.log")"
[ "$(scurl "$U/images/demo/versions/3/data" | sha)" = "$(sha <"$T/data/v1.img")" ] || fail "v3 differs"
out=$(commit "$T/m2" commit-four-00000001 3)
[ "$out" = '201 {"version":4}' ] || fail "commit after import: $(cat "$T/commit.json")"

# Concurrent commits on one base: exactly one wins.
pids=()
for i in 1 2 3 4; do
	(commit "$T/m1" "race-commit-00000$i" 4 >"$T/race.$i") &
	pids+=($!)
done
wait "${pids[@]}"
[ "$(cat "$T/race".* | grep -c '^201 ')" = 1 ] || fail "race: $(cat "$T/race".*)"
[ "$(cat "$T/race".* | grep -c '^409 ')" = 3 ] || fail "race: $(cat "$T/race".*)"
[ -z "$(ls "$SERVER_DIR/tmp")" ] || fail "uploads left in tmp/"
# A clean stop: SIGTERM gives exit 0 (under ASan: no error, no leak).
kill "$SERVER_PID"
wait "$SERVER_PID" || fail "vmferry-server exited with status $? on SIGTERM"
SERVER_PID=
echo ok
