#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Nothing readable at rest.  A mount (in the background, logging with
# every debug category into the cache directory, its key file kept there
# too) caches every block of an image and takes a distinctive pattern
# written through it; after a sync and an unmount, no file under the
# cache directory (LMDB data and lock files, cache.id, data.key, in-use,
# the key file, the log) holds any piece of the pattern or of any
# block's plaintext as fetched.  Neither the token nor the key's hex
# appears in the mount's or the server's log.  Each search is first shown
# to find what it looks for where it is (the pattern, the image).
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((4 * 1024 * 1024)) 37
import_image disk "$T/data/img.raw"
cache="$T/cache"
mkdir -p "$cache"
python3 - "$T/data/pattern.bin" <<'PY'
import sys
# 1 MiB of numbered records: every 32-byte window is distinctive.
out = b"".join(b"vmferry-at-rest-%010d-pattern!\n" % i for i in range(32768))
open(sys.argv[1], "wb").write(out[: 1 << 20])
PY

"$VMFERRY" mount "$SERVER_URL/disk" "$T/mnt" --cache "$cache" \
	--key-file "$cache/user.key" --cacert "$CACERT" \
	--token-file "$ADMIN_TOKEN_FILE" --sync-interval 0 -D all \
	--log "$cache/mount.log" 2>"$T/logs/mount.err" || fail "mount: $(cat "$T/logs/mount.err")"
cleanup_fn "fusermount3 -uz $T/mnt 2>/dev/null || true"
MOUNT_POINT="$T/mnt"
wait_hydrated
# A block read back as fetched: its plaintext is known (the image).
dd if="$T/mnt/disk.img" of="$T/data/block" bs=65536 skip=3 count=1 status=none
dd if="$T/data/img.raw" bs=65536 skip=3 count=1 status=none | cmp - "$T/data/block" ||
	fail "block 3 reads differently"
dd if="$T/data/pattern.bin" of="$T/mnt/disk.img" bs=65536 seek=16 \
	conv=notrunc,fsync status=none
"$VMFERRY" sync "$T/mnt" >"$T/logs/sync.out" || fail "sync"
"$VMFERRY" umount "$T/mnt" || fail "umount"
cp "$cache/mount.log" "$T/logs/mount.log" # shown if the test fails

# grep: a 32-byte piece of the pattern, file by file.
needle=$(sed -n 31p "$T/data/pattern.bin" | head -c 32)
[ "${#needle}" = 32 ] || fail "bad needle"
[ "$(grep -c -a -F -- "$needle" "$T/data/pattern.bin")" -gt 0 ] || fail "grep cannot find the needle"
nfiles=0
while IFS= read -r -d '' f; do
	nfiles=$((nfiles + 1))
	n=$(grep -c -a -F -- "$needle" "$f" || true)
	[ "$n" = 0 ] || fail "the pattern is readable in $f ($n lines)"
done < <(find "$cache" -type f -print0)
echo "grep: $nfiles files, needle \"$needle\": not found"

# python: many pieces of the pattern and of every non-zero block of the
# image (hydration fetched them all), in every file.
python3 - "$cache" "$T/data/pattern.bin" "$T/data/img.raw" <<'PY' || fail "plaintext at rest"
import os, sys
cache, pattern, image = sys.argv[1:]
pat = open(pattern, "rb").read()
img = open(image, "rb").read()
bs = 65536
needles = [pat[o:o + 32] for o in range(0, len(pat) - 32, len(pat) // 64)]
nblocks = 0
for b in range(0, len(img), bs):
    blk = img[b:b + bs]
    if blk.count(0) == len(blk):
        continue
    nblocks += 1
    for o in (0, 4096, 30000, bs - 32):
        piece = blk[o:o + 32]
        if piece.count(0) < 8:  # skip the zero runs make_image leaves
            needles.append(piece)
# The scan finds what it looks for where it is.
assert all(n in pat or n in img for n in needles)
files, total, found = 0, 0, []
for root, _, names in os.walk(cache):
    for name in names:
        path = os.path.join(root, name)
        data = open(path, "rb").read()
        files += 1
        total += len(data)
        found += [(path, n) for n in needles if n in data]
print("scan: %d files, %d bytes, %d needles (64 of the pattern, from %d "
      "data blocks): %d found" % (files, total, len(needles), nblocks,
                                  len(found)))
for path, n in found[:5]:
    print("found in %s: %r" % (path, n))
sys.exit(1 if found else 0)
PY

# No secret in the logs (the key's hex is, of course, in its own file).
key=$(cat "$cache/user.key")
token=$(cat "$ADMIN_TOKEN_FILE")
[ "${#key}" = 64 ] || fail "key file"
for log in "$cache/mount.log" "$T/logs/server.log" "$T/logs/mount.err"; do
	[ -s "$log" ] || [ "$log" = "$T/logs/mount.err" ] || fail "$log is empty"
	! grep -qF -e "$key" -e "$token" "$log" || fail "a secret is in $log"
done
! grep -rqF --exclude=user.key -e "$key" -e "$token" "$cache" || fail "a secret is in the cache"
echo "logs: no token, no key"
exit 0
