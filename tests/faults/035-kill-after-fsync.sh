#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An acknowledged fsync survives a crash of the client: write, fsync,
# SIGKILL the mount daemon, remount: the data reads back, LMDB opens
# without repair.  And a cache with unsynced changes refuses to mount a
# newer server version (it would mix versions), keeping the changes.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((4 * 1024 * 1024)) 35
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"

for round in 1 2 3; do
	mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
	python3 - "$T/mnt/disk.img" "$T/data/model.raw" "$round" <<'PY' || fail "write round $round"
import os, random, sys
rng = random.Random(int(sys.argv[3]))
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[2], os.O_RDWR)
size = os.path.getsize(sys.argv[2])
for i in range(50):
    off = rng.randrange(0, size - 70000)
    d = rng.randbytes(rng.choice([10, 4096, 65536, 70000]))
    os.pwrite(a, d, off)
    os.pwrite(b, d, off)
os.fsync(a)  # acknowledged: must survive what follows
PY
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	MOUNT_PID=
	fusermount3 -uz "$T/mnt"
	mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
	cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "round $round: acknowledged writes lost"
	unmount "$T/mnt"
done
mdb_stat -e "$(ls -d "$T"/cache/*/disk)" >/dev/null || fail "LMDB environment does not open"

# After one more kill, the next sync uploads what was acknowledged.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
printf 'after-the-kill' | dd of="$T/mnt/disk.img" bs=1 seek=4242 conv=notrunc,fsync status=none
printf 'after-the-kill' | dd of="$T/data/model.raw" bs=1 seek=4242 conv=notrunc status=none
kill -9 "$MOUNT_PID"
wait "$MOUNT_PID" 2>/dev/null || true
MOUNT_PID=
fusermount3 -uz "$T/mnt"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
"$VMFERRY" sync "$T/mnt" | grep -q "version 2" || fail "the sync after the crash did not commit"
unmount "$T/mnt"
mkdir -p "$T/fresh/mnt"
"$VMFERRY" mount "$SERVER_URL/disk" "$T/fresh/mnt" --cache "$T/fresh/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" --read-only || fail "fresh mount"
cmp "$T/fresh/mnt/disk.img" "$T/data/model.raw" || fail "the server lacks acknowledged writes"
"$VMFERRY" umount "$T/fresh/mnt"

# Unsynced changes again, then a newer version appears on the server.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
printf 'unsynced' | dd of="$T/mnt/disk.img" bs=1 seek=100 conv=notrunc,fsync status=none
unmount "$T/mnt"
"$VMFERRY_SERVER" lease break "$T/srv" disk >/dev/null

# A newer version on the server while changes are unsynced: refused.
import_image disk "$T/data/img.raw" # the original bytes, as version 3
if "$VMFERRY" mount "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" >"$T/logs/conflict.out" 2>&1; then
	fail "mounted a newer version over unsynced changes"
fi
grep -q "would mix versions" "$T/logs/conflict.out" || fail "unclear: $(cat "$T/logs/conflict.out")"
grep -q "vmferry push" "$T/logs/conflict.out" || fail "no way out suggested"
cat "$T/logs/conflict.out"
