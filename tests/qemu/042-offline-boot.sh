#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A fully cached copy never needs the network: the test image is mounted,
# hydrated and unmounted (kept); then, with the server stopped, the copy
# mounts offline and QEMU boots it to its marker line (the guest checks
# the sha256 of its data files), with no request answered by anyone.
source "$(dirname "$0")/../lib.sh"
requires_fuse
qemu_setup
export VMFERRY_QEMU_READONLY=1

start_server "$T/srv"
import_image testvm "$img"
mount_image "$SERVER_URL/testvm" "$T/mnt" --read-only
wait_hydrated 300
unmount "$T/mnt"
stop_server

mount_image "$SERVER_URL/testvm" "$T/mnt" --read-only
[ "$(mount_status offline)" = True ] || fail "not mounted offline"
"$TOP/tests/qemu/boot.sh" "$T/mnt/testvm.img" >"$T/logs/boot.out" 2>&1 ||
	fail "offline boot: $(tail -n 5 "$T/logs/boot.out")"
echo "offline: $(grep 'marker after' "$T/logs/boot.out")"
[ "$(mount_status bytes_fetched)" = 0 ] || fail "fetched $(mount_status bytes_fetched) bytes with no server"
unmount "$T/mnt"
