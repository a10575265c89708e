#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A dead server: cached blocks keep reading; an uncached read is retried
# with backoff and succeeds when the server comes back within the I/O
# timeout; past the timeout it fails with EIO, and the mount survives.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
port=$SERVER_PORT
make_image "$T/data/img.raw" $((4 * 1024 * 1024)) 33 
import_image disk "$T/data/img.raw"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --readahead 0 --io-timeout 6

half=$((2 * 1024 * 1024))
rd() { # rd SKIP_MIB COUNT_MIB: read through the mount with O_DIRECT
	dd if="$T/mnt/disk.img" bs=1M skip="$1" count="$2" iflag=direct status=none
}
ref() { dd if="$T/data/img.raw" bs=1M skip="$1" count="$2" status=none; }
cmp <(rd 0 2) <(ref 0 2) || fail "first half"
stop_server

# Cached: still reads.
cmp <(rd 0 2) <(ref 0 2) || fail "cached half with the server down"

# Uncached: fails with EIO after the timeout, and the mount lives on.
start=$(date +%s)
if rd 2 1 >/dev/null 2>"$T/logs/dd.err"; then fail "read with the server down succeeded"; fi
grep -q "Input/output error" "$T/logs/dd.err" || fail "expected EIO: $(cat "$T/logs/dd.err")"
took=$(( $(date +%s) - start ))
[ "$took" -ge 4 ] || fail "gave up after $took s, before the 6 s timeout"
mountpoint -q "$T/mnt" || fail "mount died"

# The server comes back while a read is retrying: the read succeeds.
rd 2 2 >"$T/data/late" 2>"$T/logs/late.err" &
reader=$!
sleep 1
start_server "$T/srv" --listen "127.0.0.1:$port"
[ "$SERVER_PORT" = "$port" ] || fail "server came back on another port"
wait "$reader" || fail "read did not recover: $(cat "$T/logs/late.err")"
cmp "$T/data/late" <(ref 2 2) || fail "recovered read differs"
unmount "$T/mnt"
