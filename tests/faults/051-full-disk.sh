#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Full disks.
# (a) The client's cache on a small tmpfs, filled by a filler file:
#     writes through the mount fail with ENOSPC (never EIO), no write
#     that returned success is lost (fsynced or not: they wait in memory
#     and are stored once there is room), reads of cached and uncached
#     blocks go on, and once the filler is removed fsync, new writes and
#     sync succeed.  Several fill/free cycles.
# (b) The server's store on a small tmpfs: a sync fails with a clear
#     error (507, not a crash, no partial version: fsck stays clean), the
#     client keeps its dirty blocks, and the next sync after space
#     returns succeeds with exactly the client's bytes.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

n=$(faults_count 2 20)
seed=${VMFERRY_SEED:-$RANDOM}
echo "seed $seed cycles $n"
SIZE=$((8 * 1024 * 1024))

mkdir -p "$T/srvfs" "$T/cache"
mount -t tmpfs -o size=48m vmferry-test "$T/srvfs" || { echo "SKIP: cannot mount tmpfs" >&2; exit 77; }
cleanup_fn "umount -l '$T/srvfs'"
mount -t tmpfs -o size=32m vmferry-test "$T/cache" || fail "mount tmpfs"
cleanup_fn "umount -l '$T/cache'"

start_server "$T/srvfs/srv"
make_image "$T/data/model" $SIZE "$seed"
import_image disk "$T/data/model"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
current() { scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
fill() { dd if=/dev/zero of="$1/filler" bs=64k status=none 2>/dev/null || true; sync; }
# same_as VERSION: the server's version holds the model's bytes.
same_as() {
	scurl -f "$SERVER_URL/v1/images/disk/versions/$1/data" -o "$T/data/got" || fail "reading version $1"
	cmp -s "$T/data/got" "$T/data/model"
}

acked=0 lost=0 wrong=0
# writer.py MNT MODEL SEED MODE: MODE "fill" writes blocks (pwrite, then
# fsync) until ENOSPC and mirrors each write that returned success;
# "some" writes a few, every one of which must succeed.  Prints
# "acked N refused M": fsync-acknowledged writes, writes refused.
cat >"$T/writer.py" <<'PY'
import errno, os, random, sys
mnt, model, seed, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
a = os.open(mnt, os.O_RDWR)
b = os.open(model, os.O_RDWR)
size = os.path.getsize(model)
acked = refused = pending = 0
for i in range(400 if mode == "fill" else 8):
    d = rng.randbytes(rng.choice([4096, 65536, 65536 * 3]))
    off = rng.randrange(0, size - len(d)) & ~4095
    try:
        n = os.pwrite(a, d, off)
        os.pwrite(b, d[:n], off)  # returned success: must never be lost
        pending += 1
        if n != len(d):
            raise OSError(errno.ENOSPC, "short write")
        os.fsync(a)
        acked += pending
        pending = 0
    except OSError as e:
        if e.errno != errno.ENOSPC or mode != "fill":
            print("write or fsync at %d: %s" % (off, e), file=sys.stderr)
            sys.exit(1)
        refused += 1
        if refused >= 3:
            break
print("acked %d refused %d" % (acked, refused))
PY

# (a) The cache's file system full.  Each cycle starts from a new cache
# (LMDB reuses the pages it freed, so an old one may never need more
# room), with some blocks cached.
for ((c = 1; c <= n; c++)); do
	head -c $((SIZE / 2)) "$T/mnt/disk.img" >/dev/null
	fill "$T/cache"
	out=$(python3 "$T/writer.py" "$T/mnt/disk.img" "$T/data/model" $((seed + c)) fill) ||
		fail "cycle $c: not ENOSPC"
	echo "cycle $c: full cache: $out"
	set -- $out
	acked=$((acked + $2))
	[ "$4" -gt 0 ] || fail "cycle $c: the disk never filled"
	# Reads go on while full: cached, uncached, and what is in memory.
	cmp -s "$T/mnt/disk.img" "$T/data/model" || {
		wrong=$((wrong + 1))
		echo "cycle $c: reads differ from the model while full"
	}
	grep -q "failed, writes and fsync now return EIO" "$T/logs/mount.log" &&
		fail "cycle $c: the full disk failed the copy"
	rm -f "$T/cache/filler"
	# Room again: fsync stores what waited, new writes succeed.
	out=$(python3 "$T/writer.py" "$T/mnt/disk.img" "$T/data/model" $((seed + 100 + c)) some) ||
		fail "cycle $c: writes after space returned"
	set -- $out
	acked=$((acked + $2))
	cmp -s "$T/mnt/disk.img" "$T/data/model" || {
		lost=$((lost + 1))
		echo "cycle $c: writes lost after space returned"
	}
	before=$(current)
	"$VMFERRY" sync "$T/mnt" >"$T/logs/sync.out" 2>&1 || fail "sync after space returned: $(cat "$T/logs/sync.out")"
	[ "$(current)" = $((before + 1)) ] || fail "sync did not add one version"
	same_as "$(current)" || { lost=$((lost + 1)); echo "the server lacks written bytes"; }
	unmount "$T/mnt"
	rm -rf "${T:?}"/cache/*
	# The store keeps room: old versions and their blocks go.
	"$VMFERRY_SERVER" gc "$T/srvfs/srv" --keep-versions 2 --grace 0 >>"$T/logs/gc.log" 2>&1 || fail "gc"
	mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
done

# (b) The server's store full.
for ((c = 1; c <= n; c++)); do
	python3 "$T/writer.py" "$T/mnt/disk.img" "$T/data/model" $((seed + 200 + c)) some >/dev/null ||
		fail "server cycle $c: writing"
	dirty=$(mount_status blocks_dirty)
	before=$(current)
	fill "$T/srvfs"
	if "$VMFERRY" sync "$T/mnt" >"$T/logs/sync.out" 2>&1; then
		fail "server cycle $c: a sync to a full store succeeded"
	fi
	grep -q "507: the server.s disk is full" "$T/logs/sync.out" || fail "server cycle $c: unclear error: $(cat "$T/logs/sync.out")"
	echo "server cycle $c: sync refused: $(head -c 300 "$T/logs/sync.out")"
	kill -0 "$SERVER_PID" || fail "the server died"
	[ "$(current)" = "$before" ] || fail "server cycle $c: a version appeared"
	[ "$(mount_status blocks_dirty)" = "$dirty" ] || fail "server cycle $c: dirty blocks dropped"
	rm -f "$T/srvfs/filler"
	"$VMFERRY_SERVER" fsck "$T/srvfs/srv" >"$T/logs/fsck.out" 2>&1 || fail "store damaged: $(cat "$T/logs/fsck.out")"
	"$VMFERRY" sync "$T/mnt" >"$T/logs/sync.out" 2>&1 || fail "server cycle $c: sync after space returned: $(cat "$T/logs/sync.out")"
	[ "$(current)" = $((before + 1)) ] || fail "server cycle $c: not one version more"
	acked=$((acked + 1))
	same_as "$(current)" || { lost=$((lost + 1)); echo "server cycle $c: version lacks written bytes"; }
	echo "server cycle $c: ok ($(head -c 200 "$T/logs/sync.out"))"
done
unmount "$T/mnt"
fault_result full-disk "$n" "$acked" "$lost" "$wrong"
