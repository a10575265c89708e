#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --max-rate paces background hydration, and demand reads are not held
# back by it: a read of uncached data completes at full speed while
# hydration crawls.
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$T/data/img.raw"
import_image disk "$T/data/img.raw"
start=$(date +%s.%N)
mount_image "$SERVER_URL/disk" "$T/mnt" --max-rate 2M
# Demand: the last MiB, immediately, at full speed.
s=$(date +%s.%N)
cmp <(dd if="$T/mnt/disk.img" bs=1M skip=7 count=1 iflag=direct status=none) \
	<(dd if="$T/data/img.raw" bs=1M skip=7 count=1 status=none) || fail "demand read differs"
d=$(echo "$(date +%s.%N) - $s" | bc)
[ "$(echo "$d < 2" | bc)" = 1 ] || fail "demand read took $d s behind paced hydration"
wait_hydrated 60
took=$(echo "$(date +%s.%N) - $start" | bc)
echo "hydrated 8 MiB at --max-rate 2M in $took s; demand read took $d s"
# 7 MiB left for hydration at 2 MiB/s: at least ~3 s (loose bound).
[ "$(echo "$took >= 2.5" | bc)" = 1 ] || fail "hydration took $took s: not paced"
cmp "$T/mnt/disk.img" "$T/data/img.raw" || fail "content differs"
unmount "$T/mnt"
