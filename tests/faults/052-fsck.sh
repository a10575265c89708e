#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmferry-server fsck: a clean store passes; each kind of damage is
# reported (exit 1); --repair removes only leftovers (tmp files,
# manifests above current, old unreferenced blocks) and keeps every file
# a committed version names, a corrupt one included.
source "$(dirname "$0")/../lib.sh"

S=$T/srv
server_init "$S"
SERVER_DIR=$S
make_image "$T/data/a.raw" $((1024 * 1024)) 52
make_image "$T/data/b.raw" $((1024 * 1024)) 53
import_image disk "$T/data/a.raw"
import_image disk "$T/data/b.raw"
fsck() { "$VMFERRY_SERVER" fsck "$S" "$@" >"$T/logs/fsck.out" 2>&1; }
fsck || fail "a clean store fails: $(cat "$T/logs/fsck.out")"
grep -q "0 missing, 0 corrupt, 0 bad files" "$T/logs/fsck.out" || fail "clean: $(cat "$T/logs/fsck.out")"
"$VMFERRY_SERVER" fsck >/dev/null 2>&1 && fail "no DIR accepted"
[ "$("$VMFERRY_SERVER" fsck "$S" --bogus >/dev/null 2>&1; echo $?)" = 2 ] || fail "usage error is not exit 2"

# Every block file a version names, to damage and to check.
blocks=$(find "$S/blocks" -type f | sort)
snapshot() { (cd "$S" && find blocks images -type f ! -name lock | sort | xargs sha256sum); }
nblocks=$(echo "$blocks" | wc -l)
[ "$nblocks" -gt 4 ] || fail "too few blocks: $nblocks"
victim_corrupt=$(echo "$blocks" | sed -n 1p)
victim_missing=$(echo "$blocks" | sed -n 2p)

expect() { # expect REGEX: fsck exits 1 and says so
	if fsck; then fail "fsck passed, expected: $1"; fi
	grep -Eq "$1" "$T/logs/fsck.out" || fail "not reported: $1: $(cat "$T/logs/fsck.out")"
}

# Damage, one kind at a time.
cp "$victim_corrupt" "$T/data/keep"
printf 'X' | dd of="$victim_corrupt" bs=1 seek=100 conv=notrunc status=none
expect "$(basename "$victim_corrupt")\) corrupt"
expect "1 corrupt"
cp "$T/data/keep" "$victim_corrupt"
mv "$victim_missing" "$T/data/keep2"
expect "$(basename "$victim_missing")\) missing"
mv "$T/data/keep2" "$victim_missing"
cp "$S/images/disk/versions/1.manifest" "$T/data/keep3"
head -c 100 "$T/data/keep3" >"$S/images/disk/versions/1.manifest"
expect "version 1: manifest"
cp "$T/data/keep3" "$S/images/disk/versions/1.manifest"
for f in lease.json pins.json policy.json; do
	echo '{"broken' >"$S/images/disk/$f"
	expect "$f"
	rm "$S/images/disk/$f"
done
echo 7x >"$S/images/disk/current"
expect "current"
echo 2 >"$S/images/disk/current"
fsck || fail "not clean once undamaged: $(cat "$T/logs/fsck.out")"

# Leftovers: a crashed commit's manifest, tmp files, unreferenced blocks.
before=$(snapshot)
cp "$S/images/disk/versions/2.manifest" "$S/images/disk/versions/3.manifest"
echo upload >"$S/tmp/upload.abc"
orphan=$(head -c 5000 /dev/urandom | tee "$T/data/orphan" | sha256sum | cut -c1-64)
mkdir -p "$S/blocks/${orphan:0:2}"
cp "$T/data/orphan" "$S/blocks/${orphan:0:2}/$orphan"
expect "versions/3.manifest above current"
grep -q "1 unreferenced blocks" "$T/logs/fsck.out" || fail "orphan not counted: $(cat "$T/logs/fsck.out")"
grep -q "1 tmp files" "$T/logs/fsck.out" || fail "tmp not counted"
# Within the grace period, repair keeps blocks and tmp files.
fsck --repair || fail "repair: $(cat "$T/logs/fsck.out")"
[ -f "$S/blocks/${orphan:0:2}/$orphan" ] || fail "young orphan removed"
[ -f "$S/tmp/upload.abc" ] || fail "young tmp file removed"
[ ! -e "$S/images/disk/versions/3.manifest" ] || fail "leftover manifest kept"
fsck --repair --grace 0 || fail "repair: $(cat "$T/logs/fsck.out")"
grep -q "removed 0 manifests, 1 blocks (5000 bytes), 1 tmp files" "$T/logs/fsck.out" ||
	fail "repair: $(cat "$T/logs/fsck.out")"
[ "$(snapshot)" = "$before" ] || fail "repair changed what committed versions use"
fsck || fail "not clean after repair"
grep -q "0 manifests above current, 0 unreferenced blocks" "$T/logs/fsck.out" || fail "leftovers remain"

# A corrupt referenced block is reported by --repair and never deleted;
# with a manifest unreadable, repair removes no block at all.
printf 'X' | dd of="$victim_corrupt" bs=1 seek=100 conv=notrunc status=none
cp "$T/data/orphan" "$S/blocks/${orphan:0:2}/$orphan"
touch -d '2 hours ago' "$S/blocks/${orphan:0:2}/$orphan"
echo garbage >"$S/images/disk/versions/1.manifest"
if fsck --repair; then fail "repair hid the damage"; fi
[ -f "$victim_corrupt" ] || fail "corrupt referenced block deleted"
[ -f "$S/blocks/${orphan:0:2}/$orphan" ] || fail "block removed with a manifest unreadable"
grep -q "no block removed" "$T/logs/fsck.out" || fail "$(cat "$T/logs/fsck.out")"
cp "$T/data/keep3" "$S/images/disk/versions/1.manifest"
fsck --repair || true
[ -f "$victim_corrupt" ] || fail "corrupt referenced block deleted"
[ ! -e "$S/blocks/${orphan:0:2}/$orphan" ] || fail "old orphan kept"
cmp "$victim_corrupt" "$T/data/keep" && fail "the corrupt block was rewritten?"
echo "fsck: damage reported, leftovers removed, referenced blocks kept"
