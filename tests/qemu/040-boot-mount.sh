#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bootable test image (tests/qemu/mkimage.sh), published on a real
# server, mounted with a cold cache and booted by QEMU straight from the
# mounted file to its marker line: once with cache=none (O_DIRECT) and
# demand fetching only (--no-hydrate), once with cache=writeback and
# background hydration on (the default).  The guest checks the sha256 of its data files, so
# a wrong byte fails the boot.
source "$(dirname "$0")/../lib.sh"
requires_fuse
qemu_setup
export VMFERRY_QEMU_READONLY=1

start_server "$T/srv"
import_image testvm "$img"

for mode in none writeback; do
	rm -rf "$T/cache"
	opts=()
	[ "$mode" = none ] && opts=(--no-hydrate)
	mount_image "$SERVER_URL/testvm" "$T/mnt" "${opts[@]}"
	VMFERRY_QEMU_CACHE=$mode VMFERRY_BOOT_LOG="$T/logs/console-$mode.log" \
		"$TOP/tests/qemu/boot.sh" "$T/mnt/testvm.img" >"$T/logs/boot-$mode.out" 2>&1 ||
		fail "boot with cache=$mode: $(tail -n 5 "$T/logs/boot-$mode.out")"
	grep -q VMFERRY-BOOT-OK "$T/logs/console-$mode.log" || fail "no marker (cache=$mode)"
	echo "cache=$mode: $(grep 'marker after' "$T/logs/boot-$mode.out")," \
		"fetched $(mount_status bytes_fetched) of $(stat -c %s "$img") bytes"
	unmount "$T/mnt"
done
