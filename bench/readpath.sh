#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick read-path figures on loopback, side by side in one run (a
# precursor of `make bench`, issue 6):
#   - seconds to the boot marker: local file vs a cold vmferry mount
#     (hydration on, and --no-hydrate), RUNS times each, interleaved;
#   - bytes fetched when the marker appeared;
#   - cold sequential read of a 512 MiB random image through the mount
#     (O_DIRECT 1 MiB reads, and buffered) vs curl of the same URL.
# Usage: bench/readpath.sh [RUNS]   (after make and make test-image)
set -euo pipefail
RUNS=${1:-3}
TOP=$(cd "$(dirname "$0")/.." && pwd)
export VMFERRY_BUILD=${VMFERRY_BUILD:-build}
source "$TOP/tests/lib.sh"
IMG=$TOP/build/test-image/test.img
[ -f "$IMG" ] || fail "no test image: make test-image"
export VMFERRY_ACCEL=${VMFERRY_ACCEL:-$("$TOP/tests/qemu/accel.sh" "$IMG")}
export VMFERRY_QEMU_READONLY=1 VMFERRY_QEMU_CACHE=none VMFERRY_BOOT_LOG=/dev/null

start_server "$T/srv"
import_image testvm "$IMG"
secs() { sed -n 's/.*marker after \([0-9.]*\) s.*/\1/p'; }

echo "== boot to marker ($VMFERRY_ACCEL, cache=none), $RUNS runs each"
for i in $(seq "$RUNS"); do
	l=$("$TOP/tests/qemu/boot.sh" "$IMG" 2>&1 | secs)
	for opt in "" --no-hydrate; do
		rm -rf "$T/cache"
		mount_image "$SERVER_URL/testvm" "$T/mnt" $opt
		m=$("$TOP/tests/qemu/boot.sh" "$T/mnt/testvm.img" 2>&1 | secs)
		f=$(mount_status bytes_fetched)
		unmount "$T/mnt"
		echo "run $i: local ${l}s  mount${opt:+ $opt} ${m}s  fetched $((f / 1048576)) MiB of $(($(stat -c %s "$IMG") / 1048576)) MiB"
	done
done

echo "== cold sequential read, 512 MiB of random data"
head -c $((512 * 1024 * 1024)) /dev/urandom >"$T/data/r.raw"
import_image rnd "$T/data/r.raw"
rate() { echo "scale=1; 512 / ($2 - $1)" | bc; }
for i in 1 2; do
	s=$(date +%s.%N)
	scurl -o /dev/null "$SERVER_URL/v1/images/rnd/versions/1/data"
	echo "curl to /dev/null:                 $(rate "$s" "$(date +%s.%N)") MiB/s"
	for opt in "" --no-hydrate; do
		for mode in direct buffered; do
			rm -rf "$T/cache"
			mount_image "$SERVER_URL/rnd" "$T/mnt" $opt
			s=$(date +%s.%N)
			if [ $mode = direct ]; then
				dd if="$T/mnt/rnd.img" of=/dev/null bs=1M iflag=direct status=none
			else
				cat "$T/mnt/rnd.img" >/dev/null
			fi
			printf 'mount %-13s %-8s: %s MiB/s\n' "${opt:-(hydrating)}" $mode "$(rate "$s" "$(date +%s.%N)")"
			unmount "$T/mnt"
		done
	done
done
