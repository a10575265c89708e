#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vmferry export` writes a version as plain files; nginx serves them and
# `vmferry mount` reads them read-only with range requests, byte for
# byte, verified: a re-export switches to the next version, writes get
# EROFS, a changed byte in the data file is never returned, and a
# --manifest-sha256 that does not match refuses the mount.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 curl nginx

start_server "$T/srv"
size=$((12 * 1024 * 1024 + 4321))
make_image "$T/data/v1.raw" "$size" 60
import_image disk "$T/data/v1.raw"

"$VMFERRY" export --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/disk" "$T/www" >"$T/logs/export1.out" 2>&1 || fail "export v1"
cmp "$T/www/disk/1/data" "$T/data/v1.raw" || fail "exported data differs from the image"
scurl -o "$T/data/v1.manifest" "$SERVER_URL/v1/images/disk/versions/1/manifest"
cmp "$T/www/disk/1/manifest" "$T/data/v1.manifest" || fail "exported manifest differs"

# Version 2: a few changed blocks; exported into the same directory.
cp "$T/data/v1.raw" "$T/data/v2.raw"
python3 - "$T/data/v2.raw" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    for off in (0, 5 * 65536 + 17, 100 * 65536):
        f.seek(off)
        f.write(b"version two!")
PY
import_image disk "$T/data/v2.raw"
"$VMFERRY" export --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/disk" "$T/www" >"$T/logs/export2.out" 2>&1 || fail "export v2"
[ -f "$T/www/disk/1/data" ] || fail "the old version's files were removed"
python3 - "$T/www/disk/vmferry.json" <<'PY' || fail "descriptor does not name version 2"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 2 and d["data"] == "2/data", d
PY
sum=$(sed -n 's/^manifest sha256: //p' "$T/logs/export2.out")
[ "$sum" = "$(sha256sum <"$T/www/disk/2/manifest" | cut -d' ' -f1)" ] ||
	fail "export printed a wrong manifest sha256"
want=$(sha256sum <"$T/data/v2.raw" | cut -d' ' -f1)

start_nginx "root $T/www;"
mount_plain "$NGINX_URL/disk/vmferry.json" "$T/mnt" --cacert "$CACERT" --no-hydrate \
	-D fetch --check-interval 1
[ "$(stat -c %s "$T/mnt/disk.img")" = "$size" ] || fail "size differs"
got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 through the mount $got != $want"
# Nothing but the export's files is asked for, even by the expiry check
# (every second here): a plain server has no API.
sleep 2
grep "fetch GET" "$T/logs/mount.log" | grep -v "/disk/" && fail "a request outside the export"
grep -q "fetch GET .*/disk/2/data" "$T/logs/mount.log" || fail "no data request logged"
# Only range requests for the data; the manifest whole, once.
[ "$(nginx_hits '/disk/2/data' | tr -d ' ')" -gt 0 ] || fail "no data requests seen"
grep -E '^/disk/2/data 200 ' "$NGINX_LOG" && fail "a data request was answered whole"
[ "$(nginx_hits '/disk/2/manifest')" = 1 ] || fail "manifest fetched more than once"
# Read-only: a write fails with EROFS and changes nothing.
if dd if=/dev/zero of="$T/mnt/disk.img" bs=4096 count=1 conv=notrunc status=none 2>"$T/logs/dd.err"; then
	fail "a write to a plain mount succeeded"
fi
grep -qi "read-only" "$T/logs/dd.err" || fail "write error is not EROFS: $(cat "$T/logs/dd.err")"
unmount "$T/mnt"

# A byte changed in the served file: that block is never returned.
python3 - "$T/www/disk/2/data" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(0)
    b = f.read(1)
    f.seek(0)
    f.write(bytes([b[0] ^ 1]))
PY
rm -rf "$T/cache"
mount_plain "$NGINX_URL/disk/vmferry.json" "$T/mnt" --cacert "$CACERT" \
	--no-hydrate --io-timeout 2
if dd if="$T/mnt/disk.img" of="$T/data/first" bs=65536 count=1 iflag=direct status=none 2>/dev/null; then
	fail "a block that fails verification was returned"
fi
cmp <(dd if="$T/mnt/disk.img" bs=65536 skip=1 count=8 iflag=direct status=none) \
	<(dd if="$T/data/v2.raw" bs=65536 skip=1 count=8 status=none) ||
	fail "good blocks after a bad one differ"
grep -q "block 0 failed verification" "$T/logs/mount.log" || fail "no verification failure logged"
unmount "$T/mnt"

# --manifest-sha256 that does not match: refused, nothing mounted.
bad=$(printf '%064d' 0)
mount_refused 1 "not the one given with --manifest-sha256" \
	"$NGINX_URL/disk/vmferry.json" --cacert "$CACERT" --manifest-sha256 "$bad"
exit 0
