#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compressed transfer (issue 6, docs/protocol.md "Compressed transfer"):
# a client that asks (Vmferry-Accept-Encoding: zstd) gets ranges that
# compress as one zstd frame, fewer bytes on the wire, the same bytes in
# the end; ranges that would not shrink by 1/16 come as they are; a
# client that does not ask (--no-compress, curl, any plain client) never
# gets a compressed body; and a damaged compressed reply never becomes
# wrong bytes.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/helpers/faultproxy.sh"
requires_fuse
requires python3 curl zstd

start_server "$T/srv"
# Compressible: text-like blocks (a disk's binaries and logs), some
# random blocks, some zero blocks, a short last block.
python3 - "$T/data/text.raw" <<'PY'
import random, sys
rng = random.Random(53)
words = [bytes(rng.choice(b"abcdefghij klmnop\n") for _ in range(rng.randint(3, 9))) for _ in range(300)]
with open(sys.argv[1], "wb") as f:
    for i in range(96):
        r = rng.random()
        if r < 0.15:
            f.write(rng.randbytes(65536))
        elif r < 0.25:
            f.write(bytes(65536))
        else:
            b = b""
            while len(b) < 65536:
                b += rng.choice(words) + b" "
            f.write(b[:65536])
    f.write(b"tail" * 250)
PY
head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/data/random.raw"
import_image text "$T/data/text.raw"
import_image random "$T/data/random.raw"
ref_sum() { sha256sum <"$1" | cut -d' ' -f1; }

# 1. The protocol, with curl: asked, a range comes as one zstd frame
# that decodes to exactly the plain range's bytes; not asked (or asked
# for something else), it comes plain.  Data answers vary on the header.
url="$SERVER_URL/v1/images/text/versions/1/data"
scurl -r 65536-1114111 -o "$T/data/plain.bin" -D "$T/data/plain.hdr" "$url" ||
	fail "plain range"
scurl -r 65536-1114111 -H "Vmferry-Accept-Encoding: zstd" -o "$T/data/z.bin" \
	-D "$T/data/z.hdr" "$url" || fail "compressed range"
grep -qi '^Vmferry-Encoding: zstd' "$T/data/z.hdr" || fail "no Vmferry-Encoding: $(cat "$T/data/z.hdr")"
grep -qi '^Vary: Vmferry-Accept-Encoding' "$T/data/z.hdr" || fail "no Vary on the compressed answer"
grep -qi '^Vary: Vmferry-Accept-Encoding' "$T/data/plain.hdr" || fail "no Vary on the plain answer"
grep -qi '^Content-Range: bytes 65536-1114111/' "$T/data/z.hdr" || fail "Content-Range of the decoded bytes: $(cat "$T/data/z.hdr")"
! grep -qi '^Vmferry-Encoding' "$T/data/plain.hdr" || fail "compressed although not asked"
[ "$(stat -c %s "$T/data/plain.bin")" = 1048576 ] || fail "plain range length"
zstd -q -d -c "$T/data/z.bin" >"$T/data/z.dec" || fail "the compressed body is not a zstd frame"
cmp "$T/data/z.dec" "$T/data/plain.bin" || fail "the frame decodes to other bytes"
zl=$(stat -c %s "$T/data/z.bin")
[ "$zl" -lt $((1048576 * 15 / 16)) ] || fail "compressed to $zl bytes: no saving"
echo "1 MiB range: $zl bytes compressed"
scurl -r 0-65535 -H "Vmferry-Accept-Encoding: gzip, br" -D "$T/data/g.hdr" -o /dev/null "$url"
! grep -qi '^Vmferry-Encoding' "$T/data/g.hdr" || fail "compressed for an encoding not asked for"
# Random bytes do not shrink: sent as they are even when asked.
scurl -r 0-1048575 -H "Vmferry-Accept-Encoding: zstd" -D "$T/data/r.hdr" \
	-o "$T/data/r.bin" "$SERVER_URL/v1/images/random/versions/1/data"
! grep -qi '^Vmferry-Encoding' "$T/data/r.hdr" || fail "random bytes sent compressed"
cmp "$T/data/r.bin" <(head -c 1048576 "$T/data/random.raw") || fail "random range bytes"

# 2. A mount that always asks (--compress=on; the default, auto, may stop
# asking on loopback: 072-compress-auto): the same bytes, fewer on the
# wire, and the server's counters agree (bytes_sent < data_bytes).
sent0=$(server_stat bytes_sent) data0=$(server_stat data_bytes)
mount_image "$SERVER_URL/text" "$T/mnt" --compress=on
[ "$(ref_sum "$T/mnt/text.img")" = "$(ref_sum "$T/data/text.raw")" ] || fail "compressed mount: wrong bytes"
wait_hydrated 60
fetched=$(mount_status bytes_fetched) wire=$(mount_status bytes_wire)
unmount "$T/mnt"
sent=$(($(server_stat bytes_sent) - sent0)) data=$(($(server_stat data_bytes) - data0))
echo "compressed mount: $fetched bytes fetched, $wire on the wire; server: $data data bytes, $sent sent"
[ "$wire" -lt $((fetched * 3 / 4)) ] || fail "the mount's wire bytes ($wire) are not below its fetched bytes ($fetched)"
[ "$sent" -lt $((data * 3 / 4)) ] || fail "the server sent $sent bytes for $data data bytes"

# 3. --no-compress: never compressed.
rm -rf "$T/cache"
mount_image "$SERVER_URL/text" "$T/mnt" --no-compress
[ "$(ref_sum "$T/mnt/text.img")" = "$(ref_sum "$T/data/text.raw")" ] || fail "plain mount: wrong bytes"
wait_hydrated 60
[ "$(mount_status bytes_wire)" = "$(mount_status bytes_fetched)" ] ||
	fail "--no-compress: $(mount_status bytes_wire) wire bytes for $(mount_status bytes_fetched)"
unmount "$T/mnt"

# 4. Damaged compressed replies (bits flipped, bodies cut, connections
# dropped) are refused: reads give the right bytes or EIO, never others;
# once healed, the copy completes and is right.
start_faultproxy 53
for kind in flip truncate drop; do
	rm -rf "$T/cache"
	proxy_ctl "set?kind=$kind&p=0.5&match=^GET%20.*/data$"
	# No read-ahead and no hydration: every request is a read's own,
	# whose failures are logged (read-ahead's are best effort, silent).
	proxy_mount "$PROXY_URL/text" "$T/mnt" --read-only --io-timeout 3 --no-hydrate \
		--readahead 0 --no-profile --compress=on
	python3 - "$T/mnt/text.img" "$T/data/text.raw" <<'PY' || fail "$kind: wrong bytes"
import os, sys
ref = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_RDONLY)
ok = eio = 0
for off in range(0, len(ref), 131072):
    try:
        got = os.pread(fd, 131072, off)
    except OSError as e:
        if e.errno != 5:
            raise
        eio += 1
        continue
    if got != ref[off:off + 131072]:
        sys.exit("WRONG bytes at %d" % off)
    ok += 1
print("%d reads right, %d EIO" % (ok, eio))
PY
	[ "$(mount_status bytes_wire)" -lt "$(mount_status bytes_fetched)" ] ||
		fail "$kind: replies through the proxy were not compressed"
	proxy_ctl clear
	[ "$(ref_sum "$T/mnt/text.img")" = "$(ref_sum "$T/data/text.raw")" ] || fail "$kind: wrong bytes after healing"
	unmount "$T/mnt"
	cp "$T/logs/mount.log" "$T/logs/mount-$kind.log"
done
proxy_ctl stats | tee "$T/logs/proxy-stats.json"
# The faults met compressed replies, and the client said why it refused
# them (the zstd frame's own checks, or the block hash after decoding).
grep -q "compressed reply" "$T"/logs/mount-*.log || fail "no compressed reply was refused: $(cat "$T"/logs/mount-*.log)"
