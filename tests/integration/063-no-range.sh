#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Servers that cannot serve a block on its own: nginx answering 200 to a
# Range request (max_ranges 0) and nginx answering 200 with no length
# (chunked, through sub_filter).  The mount says so on stderr, falls
# back to one full download into the cache before the file appears, and
# reads the right bytes with no further data request.  A served file
# with one changed byte fails the full download: nothing is mounted.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 curl nginx

size=$((5 * 1024 * 1024 + 3333))
exported_image "$size" 63 "$T/www"
mkdir -p "$T/bad"
cp -r "$T/www/disk" "$T/bad/"
python3 - "$T/bad/disk/1/data" "$T/bad/disk/1/manifest" <<'PY'
import sys
man = open(sys.argv[2], "rb").read()
# The last block that holds data (its manifest hash is not zero).
n = (len(man) - 64) // 32
b = max(i for i in range(n) if man[64 + 32 * i:96 + 32 * i] != bytes(32))
with open(sys.argv[1], "r+b") as f:
    off = b * 65536 + 10
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x40]))
PY
cmp -s "$T/bad/disk/1/data" "$T/data/img.raw" && fail "the bad copy is not bad"

start_nginx "location /norange/ { alias $T/www/; max_ranges 0; }
		location /chunked/ { alias $T/www/; sub_filter 'vmferry-no-such-string-7c1e' ''; sub_filter_types *; }
		location /bad/ { alias $T/bad/; max_ranges 0; }"

for kind in norange chunked; do
	rm -rf "$T/cache"
	: >"$NGINX_LOG"
	mount_plain "$NGINX_URL/$kind/disk/vmferry.json" "$T/mnt" --cacert "$CACERT"
	log="$T/logs/mount.log"
	grep -q "answered a Range request with HTTP 200" "$log" || fail "$kind: no message about Range"
	grep -q "falling back to a full download" "$log" || fail "$kind: no message about the fallback"
	if [ "$kind" = chunked ]; then
		grep -q "no length" "$log" || fail "chunked: the missing length is not reported"
	fi
	n=$(nginx_hits "/$kind/disk/1/data")
	got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
	[ "$got" = "$WANT" ] || fail "$kind: sha256 through the mount $got != $WANT"
	# The probe and the one full download; reads found everything cached.
	[ "$n" = 2 ] || fail "$kind: $n data requests before the read, want 2"
	[ "$(nginx_hits "/$kind/disk/1/data")" = 2 ] || fail "$kind: reads made data requests"
	[ "$(mount_status complete)" = True ] || fail "$kind: copy not complete"
	unmount "$T/mnt"
done

# One changed byte: the full download stops, nothing is mounted.
mount_refused 1 "the full download failed: .*do not match the manifest" \
	"$NGINX_URL/bad/disk/vmferry.json" --cacert "$CACERT"
exit 0
