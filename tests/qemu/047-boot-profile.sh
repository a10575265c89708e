#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A cold boot with a boot profile waits for the network far less: the
# test image is booted from a cold copy with background hydration
# crawling (--max-rate 64K, so that the guest's reads are demand); the
# unmount uploads the boot's first-read order; a
# second cold copy prefetches it, and its boot makes a fraction of the
# demand requests of the first (the guest finds the blocks fetched or
# in flight).  Both boots check their data (the guest's sha256 of its
# files), and the server's profile lists what the first boot read.
source "$(dirname "$0")/../lib.sh"
requires_fuse
qemu_setup
export VMFERRY_QEMU_READONLY=1

start_server "$T/srv" --verbose
import_image testvm "$img"

declare -A demand fetched secs
for run in first profiled; do
	rm -rf "$T/cache"
	mount_image "$SERVER_URL/testvm" "$T/mnt" --max-rate 64K --profile-seconds 0
	if [ "$run" = profiled ]; then
		for ((i = 0; i < 600; i++)); do
			[ "$(mount_status profile_blocks)" != 0 ] && break
			sleep 0.1
		done
		[ "$(mount_status profile_blocks)" != 0 ] || fail "no profile prefetched"
	fi
	VMFERRY_BOOT_LOG="$T/logs/console-$run.log" \
		"$TOP/tests/qemu/boot.sh" "$T/mnt/testvm.img" >"$T/logs/boot-$run.out" 2>&1 ||
		fail "$run boot: $(tail -n 5 "$T/logs/boot-$run.out")"
	grep -q VMFERRY-BOOT-OK "$T/logs/console-$run.log" || fail "no marker ($run)"
	demand[$run]=$(mount_status demand_requests)
	fetched[$run]=$(mount_status bytes_fetched)
	secs[$run]=$(sed -n 's/^boot: marker after \([0-9.]*\) s.*/\1/p' "$T/logs/boot-$run.out")
	echo "$run boot: ${secs[$run]} s, ${demand[$run]} demand requests," \
		"${fetched[$run]} bytes fetched, profile $(mount_status profile_fetched)" \
		"of $(mount_status profile_blocks) blocks prefetched"
	unmount "$T/mnt"
done
n=$(scurl "$SERVER_URL/v1/images/testvm/versions/1/profile" |
	python3 -c 'import json,sys; print(len(json.load(sys.stdin)["blocks"]))')
[ "$n" -gt 10 ] || fail "the first boot's profile has $n blocks"
# The profiled boot still reads a little on demand (the profile runs
# ahead of the guest, not always far enough); a quarter is generous.
[ "$((demand[profiled] * 4))" -lt "${demand[first]}" ] ||
	fail "profiled boot: ${demand[profiled]} demand requests, not far fewer than ${demand[first]}"
