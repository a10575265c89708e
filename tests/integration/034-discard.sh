#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The guest's discard becomes zero blocks: fallocate punch-hole and
# zero-range through the mount (and QEMU's own discard and write-zeroes,
# through qemu-io's raw driver) read back as zeros, keep the edges of
# partial blocks, travel as zero hashes (nothing uploaded for them) and
# reach a fresh client.  Modes that would grow the file or move data are
# refused, a read-only mount refuses all, and nothing changes when they
# fail.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3
requires fallocate

start_server "$T/srv"
size=$((4 * 1024 * 1024))
head -c "$size" /dev/urandom >"$T/data/img.raw" # every block is data
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
# zero_model OFF LEN: what a discard of [OFF, OFF+LEN) leaves.
zero_model() { fallocate -p -o "$1" -l "$2" "$T/data/model.raw" || fail "model"; }

mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
F=$T/mnt/disk.img
# Whole blocks 1-3; then an unaligned range across blocks 15-18 whose
# edges must survive (blocks never fetched: they are read first).
fallocate -p -o 65536 -l $((3 * 65536)) "$F" || fail "punch whole blocks"
zero_model 65536 $((3 * 65536))
fallocate -p -o 1000000 -l 200000 "$F" || fail "punch unaligned"
zero_model 1000000 200000
fallocate -z -n -o 2500000 -l 70000 "$F" || fail "zero range"
zero_model 2500000 70000
cmp "$F" "$T/data/model.raw" || fail "read back differs after fallocate"
[ "$(mount_status zeroed_bytes)" = $((3 * 65536 + 200000 + 70000)) ] ||
	fail "status says $(mount_status zeroed_bytes) bytes zeroed"

# QEMU's raw driver on the mounted file: discard and write-zeroes.
if command -v qemu-io >/dev/null; then
	qemu-io -f raw -d unmap -c "discard 3M 128k" -c "write -z 3670016 4096" \
		"$F" >"$T/logs/qemu-io.log" 2>&1 || fail "qemu-io: $(cat "$T/logs/qemu-io.log")"
	zero_model $((3 * 1024 * 1024)) $((128 * 1024))
	zero_model 3670016 4096
	cmp "$F" "$T/data/model.raw" || fail "read back differs after qemu-io"
fi

# Refused, and nothing changes: growing, collapsing, inserting.
before=$(sha256sum <"$F")
! fallocate -o $((size - 4096)) -l 8192 "$F" 2>"$T/logs/grow.err" || fail "fallocate grew the image"
grep -q "too large" "$T/logs/grow.err" || fail "grow: $(cat "$T/logs/grow.err")"
! fallocate -c -o 0 -l 65536 "$F" 2>"$T/logs/collapse.err" || fail "collapse-range succeeded"
grep -q "not supported" "$T/logs/collapse.err" || fail "collapse: $(cat "$T/logs/collapse.err")"
fallocate -n -o 0 -l 65536 "$F" || fail "allocating inside the image should be a no-op"
[ "$(sha256sum <"$F")" = "$before" ] || fail "a refused fallocate changed the disk"
[ "$(stat -c %s "$F")" = "$size" ] || fail "size changed"

# The sync sends zero hashes, not zero blocks.
nblocks() { find "$T/srv/blocks" -type f | wc -l; }
before=$(nblocks)
out=$("$VMFERRY" sync "$T/mnt") || fail "sync: $out"
added=$(($(nblocks) - before))
# Partly zeroed blocks are new data: 15, 18 (unaligned punch), 38, 39
# (zero range), 56 (write -z).  The 3 + 2 + 2 wholly zeroed blocks are not.
[ "$added" -le 5 ] || fail "sync stored $added blocks; zero blocks were uploaded?"
python3 - "$T/srv/images/disk/versions/2.manifest" <<'PY' || fail "manifest"
import sys
m = open(sys.argv[1], "rb").read()
entries = m[64:]
zero = [i for i in range(len(entries) // 32) if entries[i*32:i*32+32] == bytes(32)]
want = [1, 2, 3, 16, 17, 48, 49]
assert all(b in zero for b in want), ("zero blocks", zero)
print("zero blocks in version 2:", zero)
PY
unmount "$T/mnt"

# A fresh client reads the model.
mkdir -p "$T/fresh/mnt"
"$VMFERRY" mount "$SERVER_URL/disk" "$T/fresh/mnt" --cache "$T/fresh/cache" \
	--key-file "$T/user.key" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	--read-only --log "$T/logs/fresh.log" || fail "fresh mount"
cmp "$T/fresh/mnt/disk.img" "$T/data/model.raw" || fail "a fresh client reads something else"
# The read-only mount refuses discards.
! fallocate -p -o 0 -l 65536 "$T/fresh/mnt/disk.img" 2>"$T/logs/ro.err" || fail "read-only mount discarded"
grep -q "Read-only" "$T/logs/ro.err" || fail "read-only: $(cat "$T/logs/ro.err")"
"$VMFERRY" umount "$T/fresh/mnt" >/dev/null || fail "fresh umount"
