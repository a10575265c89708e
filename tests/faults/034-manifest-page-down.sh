#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The manifest is checked whole at mount and kept in the copy, then
# loaded into memory in pages: a read past the first page while the
# server is away needs no manifest request (the page comes from the
# copy), and its block's fetch is retried: it recovers when the server
# returns within the I/O timeout.
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv"
port=$SERVER_PORT
# 4 KiB blocks: 8192 entries per page cover 32 MiB, so 40 MiB needs two.
head -c $((40 * 1024 * 1024)) /dev/urandom >"$T/data/img.raw"
import_image disk "$T/data/img.raw" --block-size 4K
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --readahead 0 --io-timeout 20
stop_server

# Past 32 MiB: page 1 is needed and the server is down.
dd if="$T/mnt/disk.img" bs=4K skip=$((36 * 256)) count=1 iflag=direct status=none \
	>"$T/data/late" 2>"$T/logs/late.err" &
reader=$!
sleep 2
kill -0 "$reader" 2>/dev/null || fail "read finished while the server was down: $(cat "$T/logs/late.err")"
start_server "$T/srv" --listen "127.0.0.1:$port"
wait "$reader" || fail "read did not recover: $(cat "$T/logs/late.err")"
cmp "$T/data/late" <(dd if="$T/data/img.raw" bs=4K skip=$((36 * 256)) count=1 status=none) ||
	fail "recovered read differs"
! grep -q "manifest page" "$T/logs/mount.log" || fail "a manifest page was fetched again: $(cat "$T/logs/mount.log")"
grep -q "fetching blocks $((36 * 256))" "$T/logs/mount.log" || fail "no block retry in the log"
unmount "$T/mnt"
