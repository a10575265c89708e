#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A plain server's 416 and 5xx answers are errors that carry the
# server's own words: at mount (the data file answers 416, or 503 with a
# text body) the mount is refused with them; while mounted (500 with a
# body, switched on by a flag file) a read of an uncached block fails
# with EIO and the log has them; once the server recovers the same read
# returns the right bytes.  Nothing wrong is ever returned.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 curl nginx

size=$((4 * 1024 * 1024 + 55))
exported_image "$size" 64 "$T/www"

start_nginx "location ~ ^/r416/.*/data\$ { return 416 \"range not satisfiable: the export is being replaced\n\"; }
		location /r416/ { alias $T/www/; }
		location ~ ^/r503/.*/data\$ { return 503 \"maintenance until 02:00, try later\n\"; }
		location /r503/ { alias $T/www/; }
		location /live/ {
			alias $T/www/;
			if (-f $T/broken) { return 500 \"disk array degraded\n\"; }
		}"

mount_refused 1 "HTTP 416: range not satisfiable: the export is being replaced" \
	"$NGINX_URL/r416/disk/vmferry.json" --cacert "$CACERT"
mount_refused 1 "HTTP 503: maintenance until 02:00, try later" \
	"$NGINX_URL/r503/disk/vmferry.json" --cacert "$CACERT"

# While mounted: the first MiB is read (cached), then the server breaks.
mount_plain "$NGINX_URL/live/disk/vmferry.json" "$T/mnt" --cacert "$CACERT" \
	--no-hydrate --readahead 0 --io-timeout 2
cmp <(dd if="$T/mnt/disk.img" bs=1M count=1 iflag=direct status=none) \
	<(head -c 1048576 "$T/data/img.raw") || fail "first MiB differs"
touch "$T/broken"
# The last block holds data; it is not cached.
python3 - "$T/www/disk/1/manifest" <<'PY' || fail "the test image's last block is zero"
import sys
m = open(sys.argv[1], "rb").read()
sys.exit(m[-32:] == bytes(32))
PY
if dd if="$T/mnt/disk.img" of="$T/data/got" bs=55 skip=$(((size - 55) / 55)) count=1 \
	iflag=direct status=none 2>"$T/logs/dd.err"; then
	fail "a read through a failing server succeeded"
fi
grep -q "Input/output error" "$T/logs/dd.err" || fail "not EIO: $(cat "$T/logs/dd.err")"
grep -q "HTTP 500: disk array degraded" "$T/logs/mount.log" ||
	fail "the 500's words are not in the log"
rm -f "$T/broken"
cmp <(dd if="$T/mnt/disk.img" bs=1M skip=1 iflag=direct status=none) \
	<(tail -c +1048577 "$T/data/img.raw") || fail "bytes after recovery differ"
unmount "$T/mnt"
exit 0
