#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Write-path figures on loopback, side by side in one run: write
# throughput through the mount against a local file (buffered with one
# fsync at the end, and O_DSYNC per 1 MiB write), and the time of
# `vmferry sync` for 100 MiB of changes with the bytes the server stored.
# Usage: bench/writepath.sh   (after make)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
export VMFERRY_BUILD=${VMFERRY_BUILD:-build}
source "$TOP/tests/lib.sh"

start_server "$T/srv"
size_mib=512
truncate -s ${size_mib}M "$T/data/base.raw"
import_image disk "$T/data/base.raw"
head -c $((256 * 1024 * 1024)) /dev/urandom >"$T/data/src"
rate() { echo "scale=1; $3 / ($2 - $1)" | bc; }
cp "$T/data/base.raw" "$T/data/local.raw"

run() { # run LABEL TARGET DDFLAGS...
	local label=$1 target=$2 s
	shift 2
	s=$(date +%s.%N)
	dd if="$T/data/src" of="$target" bs=1M count=256 conv=notrunc "$@" status=none
	printf '%-34s %s MiB/s\n' "$label" "$(rate "$s" "$(date +%s.%N)" 256)"
}
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0 --no-sync
for i in 1 2; do
	run "local file, one fsync:" "$T/data/local.raw" conv=notrunc,fsync
	run "mount, one fsync:" "$T/mnt/disk.img" conv=notrunc,fsync
	run "local file, O_DSYNC:" "$T/data/local.raw" oflag=dsync
	run "mount, O_DSYNC:" "$T/mnt/disk.img" oflag=dsync
done
unmount "$T/mnt"
# The --no-sync mount kept its lease (changes unsynced); this cache is
# thrown away, so the lease goes too.
rm -rf "$T/cache"
"$VMFERRY_SERVER" lease break "$T/srv" disk >/dev/null

mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
dd if="$T/data/src" of="$T/mnt/disk.img" bs=1M count=100 seek=50 conv=notrunc,fsync status=none
before=$(du -sb "$T/srv/blocks" | cut -f1)
s=$(date +%s.%N)
out=$("$VMFERRY" sync "$T/mnt")
e=$(date +%s.%N)
after=$(du -sb "$T/srv/blocks" | cut -f1)
echo "sync of 100 MiB of changes: $(echo "$e - $s" | bc) s; $out"
echo "server store grew by $(( (after - before) / 1048576 )) MiB for 100 MiB written"
# The same 100 MiB written again, unchanged: nothing to upload.
dd if="$T/data/src" of="$T/mnt/disk.img" bs=1M count=100 seek=50 conv=notrunc,fsync status=none
s=$(date +%s.%N)
out=$("$VMFERRY" sync "$T/mnt")
echo "sync after rewriting the same bytes: $(echo "$(date +%s.%N) - $s" | bc) s; $out"
unmount "$T/mnt"

# The LMDB file's growth under sustained rewrites: the same 64 MiB
# rewritten with new bytes ten times, synced each time.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
mdb=$(ls "$T"/cache/*/disk/data.mdb)
for i in $(seq 10); do
	head -c $((64 * 1024 * 1024)) /dev/urandom |
		dd of="$T/mnt/disk.img" bs=1M seek=300 conv=notrunc,fsync status=none
	"$VMFERRY" sync "$T/mnt" >/dev/null
	printf 'rewrite %2d of 64 MiB: data.mdb %4d MiB on disk\n' "$i" \
		$(( $(stat -c %b "$mdb") * 512 / 1048576 ))
done
unmount "$T/mnt"
