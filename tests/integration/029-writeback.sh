#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Write-back: writes through the mount, `vmferry sync`, and a second
# client with an empty cache reads exactly the first client's view.  Only
# changed blocks travel (counted in the server's store); rewriting a block
# with its old contents uploads nothing; unmount syncs first unless
# --no-sync, which keeps the changes for the next mount.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
size=$((8 * 1024 * 1024 + 333))
make_image "$T/data/img.raw" "$size" 29
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
nblocks() { find "$T/srv/blocks" -type f | wc -l; }
fresh_sha() { # the server's newest version, read by a client with no cache
	local c="$T/fresh-$1"
	mkdir -p "$c/mnt"
	"$VMFERRY" mount "$SERVER_URL/disk" "$c/mnt" --cache "$c/cache" \
		--key-file "$T/user.key" --cacert "$CACERT" \
		--token-file "$ADMIN_TOKEN_FILE" --read-only --log "$T/logs/fresh-$1.log" ||
		fail "fresh mount $1"
	sha256sum <"$c/mnt/disk.img" | cut -d' ' -f1
	"$VMFERRY" umount "$c/mnt" >/dev/null || fail "fresh umount $1"
}

mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
# 40 writes of 1-3 blocks at block-aligned offsets, random contents.
python3 - "$T/mnt/disk.img" "$T/data/model.raw" <<'PY' || fail "writes"
import os, random, sys
rng = random.Random(29)
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[2], os.O_RDWR)
blocks = set()
for i in range(40):
    blk = rng.randrange(0, 120)
    n = rng.choice([1, 2, 3])
    d = rng.randbytes(n * 65536)
    os.pwrite(a, d, blk * 65536)
    os.pwrite(b, d, blk * 65536)
    blocks.update(range(blk, blk + n))
open(sys.argv[2] + ".blocks", "w").write(str(len(blocks)))
PY
written=$(cat "$T/data/model.raw.blocks")
before=$(nblocks)
out=$("$VMFERRY" sync "$T/mnt") || fail "sync failed: $out"
echo "$out"
echo "$out" | grep -q "version 2" || fail "not version 2: $out"
added=$(( $(nblocks) - before ))
echo "blocks written: $written, new blocks in the server's store: $added"
[ "$added" -le "$written" ] || fail "uploaded $added blocks for $written written"
[ "$added" -ge 1 ] || fail "nothing uploaded"
[ "$(mount_status blocks_dirty)" = 0 ] || fail "still dirty after sync"
want=$(sha256sum <"$T/data/model.raw" | cut -d' ' -f1)
[ "$(sha256sum <"$T/mnt/disk.img" | cut -d' ' -f1)" = "$want" ] || fail "first client's view differs from the model"
[ "$(fresh_sha 1)" = "$want" ] || fail "a fresh client does not see the synced version"

# Rewriting blocks with their current contents uploads nothing.
before=$(nblocks)
dd if="$T/data/model.raw" of="$T/mnt/disk.img" bs=64K skip=10 seek=10 count=5 conv=notrunc status=none
out=$("$VMFERRY" sync "$T/mnt") || fail "sync 2: $out"
echo "$out"
[ "$(nblocks)" = "$before" ] || fail "rewriting old contents uploaded blocks"

# Unmount syncs first.
printf 'unmount-sync' | dd of="$T/mnt/disk.img" bs=1 seek=777777 conv=notrunc status=none
printf 'unmount-sync' | dd of="$T/data/model.raw" bs=1 seek=777777 conv=notrunc status=none
unmount "$T/mnt"
want=$(sha256sum <"$T/data/model.raw" | cut -d' ' -f1)
[ "$(fresh_sha 2)" = "$want" ] || fail "unmount did not sync"

# --no-sync keeps the changes local; the next mount still has them and
# syncs them.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0 --no-sync
printf 'kept-local' | dd of="$T/mnt/disk.img" bs=1 seek=999 conv=notrunc status=none
printf 'kept-local' | dd of="$T/data/model.raw" bs=1 seek=999 conv=notrunc status=none
unmount "$T/mnt"
[ "$(fresh_sha 3)" != "$(sha256sum <"$T/data/model.raw" | cut -d' ' -f1)" ] || fail "--no-sync synced"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "local changes lost"
"$VMFERRY" sync "$T/mnt" || fail "sync 3"
unmount "$T/mnt"
[ "$(fresh_sha 4)" = "$(sha256sum <"$T/data/model.raw" | cut -d' ' -f1)" ] || fail "kept changes not synced"
