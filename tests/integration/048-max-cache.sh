#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --max-cache bounds a copy's disk use: reading an image four times the
# bound reads back exactly while the cache never holds more blocks than
# the bound (data.mdb stops growing, within twice the bound), the least recently used blocks go
# first, hydration stops at the bound; written blocks are never evicted:
# once unsynced blocks fill the bound a write fails with ENOSPC (after
# the I/O timeout) and loses nothing acknowledged; a sync makes room and
# writing goes on; a fresh client reads the model.  Bad values are
# refused.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
size=$((16 * 1024 * 1024))
head -c "$size" /dev/urandom >"$T/data/img.raw" # 256 data blocks of 64 KiB
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
# 4 MiB + change: 61 blocks of 68 KiB on disk.
bound=$((61 * 69632))
max_blocks=61
# No read-ahead: the LRU check below counts exactly what is read.
mount_image "$SERVER_URL/disk" "$T/mnt" --max-cache "$bound" --sync-interval 0 --io-timeout 2 --readahead 0
F=$T/mnt/disk.img
db="$T/cache/127.0.0.1_$SERVER_PORT/disk/data.mdb"

# Hydration stops at the bound.
for ((i = 0; i < 100; i++)); do
	grep -q "the cache is at --max-cache" "$T/logs/mount.log" && break
	sleep 0.1
done
grep -q "the cache is at --max-cache" "$T/logs/mount.log" || fail "hydration did not stop at the bound"
cached() { mount_status blocks_cached; }
[ "$(cached)" -le "$max_blocks" ] || fail "$(cached) blocks cached, bound $max_blocks"

# Four times the bound, read twice: exact bytes, bounded cache.
for pass in 1 2; do
	cmp "$F" "$T/data/model.raw" || fail "pass $pass differs"
	[ "$(cached)" -le "$max_blocks" ] || fail "pass $pass: $(cached) blocks cached, bound $max_blocks"
done
[ "$(mount_status evicted_blocks)" -gt 0 ] || fail "nothing evicted"
# The file does not keep growing: LMDB reuses the evicted blocks' pages
# (pages freed by the last write or two are not reusable yet: that, the
# manifest pages and LMDB's own pages are the overhead over the bound).
size2=$(stat -c %s "$db")
for pass in 3 4 5; do cmp "$F" "$T/data/model.raw" || fail "pass $pass differs"; done
size5=$(stat -c %s "$db")
echo "data.mdb after 2 passes: $size2 bytes, after 5: $size5 (bound $bound)"
[ "$size5" -le $((size2 + size2 / 10)) ] || fail "data.mdb grew from $size2 to $size5 bytes over three more passes"
"$VMFERRY" status "$F" >/dev/null 2>&1 || true
"$VMFERRY" status "$T/mnt" | grep -q "^bound:    --max-cache" || fail "status does not show the bound"

# Recently used blocks stay: read block 0-7 often, then sweep the rest;
# blocks 0-7 are still cached (no request for them).
for i in 1 2 3; do dd if="$F" bs=64K count=8 iflag=direct status=none >/dev/null; done
dd if="$F" bs=64K skip=100 count=40 iflag=direct status=none >/dev/null
before=$(mount_status requests)
dd if="$F" bs=64K count=8 iflag=direct status=none | cmp - <(head -c $((8 * 65536)) "$T/data/model.raw") || fail "hot blocks"
[ "$(mount_status requests)" = "$before" ] || fail "the most recently used blocks were evicted"

# Writes: distinct blocks until the bound is full of unsynced ones.
python3 - "$F" "$T/data/model.raw" "$max_blocks" >"$T/logs/writes.out" 2>&1 <<'PY' || fail "writes: $(cat "$T/logs/writes.out")"
import errno, os, sys
f, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = os.open(f, os.O_RDWR); b = os.open(model, os.O_RDWR)
ok = 0
for blk in range(n + 5):
    d = os.urandom(65536)
    try:
        assert os.pwrite(a, d, blk * 65536) == 65536
        os.fsync(a)
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
        print("ENOSPC at block", blk); break
    os.pwrite(b, d, blk * 65536); ok += 1
else:
    sys.exit("no ENOSPC after %d distinct blocks" % (n + 5))
assert ok == n, ("acknowledged", ok, "want", n)
print("acknowledged", ok)
PY
cat "$T/logs/writes.out"
cmp "$F" "$T/data/model.raw" || fail "acknowledged writes do not read back"
# A sync makes room: the synced blocks become evictable.
"$VMFERRY" sync "$T/mnt" >"$T/logs/sync.out" 2>&1 || fail "sync: $(cat "$T/logs/sync.out")"
printf 'after-sync' | dd of="$F" bs=1 seek=$((200 * 65536)) conv=notrunc,fsync status=none || fail "write after sync"
printf 'after-sync' | dd of="$T/data/model.raw" bs=1 seek=$((200 * 65536)) conv=notrunc status=none
cmp "$F" "$T/data/model.raw" || fail "after sync (evicted synced blocks refetched from the new version)"
[ "$(cached)" -le "$max_blocks" ] || fail "over the bound after writes"
unmount "$T/mnt"
dbsize=$(stat -c %s "$db")
echo "data.mdb: $dbsize bytes for a bound of $bound"
[ "$dbsize" -le $((bound * 2 + 2 * 1024 * 1024)) ] || fail "data.mdb is $dbsize bytes for a bound of $bound"

mkdir -p "$T/fresh/mnt"
"$VMFERRY" mount "$SERVER_URL/disk" "$T/fresh/mnt" --cache "$T/fresh/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" --read-only --log "$T/logs/fresh.log" || fail "fresh mount"
cmp "$T/fresh/mnt/disk.img" "$T/data/model.raw" || fail "a fresh client reads something else"
"$VMFERRY" umount "$T/fresh/mnt" >/dev/null || fail "fresh umount"

# Bad values.
for v in 0 abc 100K; do
	if "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" --key-file "$T/user.key" \
		--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" --max-cache "$v" >"$T/logs/bad.log" 2>&1; then
		fail "--max-cache $v accepted"
	fi
	grep -Eq "max-cache.*(invalid|too small)" "$T/logs/bad.log" || fail "--max-cache $v: $(cat "$T/logs/bad.log")"
done
