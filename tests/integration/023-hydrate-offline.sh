#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Background hydration completes the local copy; then, with the server
# stopped, the whole file still reads correctly.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((24 * 1024 * 1024 + 4097)) 23
import_image disk "$T/data/img.raw"
want=$(sha256sum <"$T/data/img.raw" | cut -d' ' -f1)
mount_image "$SERVER_URL/disk" "$T/mnt" --io-timeout 5
wait_hydrated 120
"$VMFERRY" status "$T/mnt" >"$T/logs/status.txt"
grep -q "complete" "$T/logs/status.txt" || fail "status does not say complete"
timeout 20 "$VMFERRY" status --watch "$T/mnt" >"$T/logs/watch.txt" ||
	fail "status --watch did not finish on a complete copy"
grep -q "100%" "$T/logs/watch.txt" || fail "no full bar: $(cat "$T/logs/watch.txt")"
stop_server
got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "offline sha256 $got != $want"
unmount "$T/mnt"
