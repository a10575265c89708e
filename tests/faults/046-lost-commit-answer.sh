#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A commit that reached the server but whose answer was lost, on every
# retry of it: the next sync sends it again under the same commit id, so
# the sync point becomes one version (not a conflict, not two versions);
# with more writes meanwhile, they follow as the next version.  Through
# the fault proxy (tests/helpers/faultproxy.py).  docs/faults.md,
# "Network faults".
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/helpers/faultproxy.sh"
requires_fuse
requires python3 openssl curl

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 46
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
start_faultproxy 46
proxy_mount "$PROXY_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0

patch() { # patch SEEK_KB: the same bytes into the mount and the model
	head -c 70000 /dev/urandom >"$T/data/patch"
	dd if="$T/data/patch" of="$T/mnt/disk.img" bs=1000 seek="$1" conv=notrunc,fsync status=none
	dd if="$T/data/patch" of="$T/data/model.raw" bs=1000 seek="$1" conv=notrunc status=none
}
sum() { sha256sum <"$1" | cut -d' ' -f1; }
version_sum() {
	scurl "$SERVER_URL/v1/images/disk/versions/$1/data" | sha256sum | cut -d' ' -f1
}

# 1. Every answer to the commit lost, after the server committed.
patch 100
want2=$(sum "$T/data/model.raw")
proxy_ctl "set?kind=drop-after&n=10&match=^POST%20.*/versions$"
if "$VMFERRY" sync "$T/mnt" >"$T/logs/sync1.log" 2>&1; then
	fail "sync succeeded with every commit answer lost"
fi
proxy_ctl clear
"$VMFERRY" sync "$T/mnt" >"$T/logs/sync2.log" 2>&1 || fail "sync after healing: $(cat "$T/logs/sync2.log")"
grep -q "version 2" "$T/logs/sync2.log" || fail "not version 2: $(cat "$T/logs/sync2.log")"

# 2. Lost again, and more writes before the next sync: the lost commit
# is version 3, the new writes version 4.
patch 900
want3=$(sum "$T/data/model.raw")
proxy_ctl "set?kind=drop-after&n=10&match=^POST%20.*/versions$"
"$VMFERRY" sync "$T/mnt" >"$T/logs/sync3.log" 2>&1 && fail "sync succeeded with every commit answer lost"
proxy_ctl clear
patch 1500
want4=$(sum "$T/data/model.raw")
"$VMFERRY" sync "$T/mnt" >"$T/logs/sync4.log" 2>&1 || fail "sync after healing: $(cat "$T/logs/sync4.log")"
grep -q "version 4" "$T/logs/sync4.log" || fail "not version 4: $(cat "$T/logs/sync4.log")"
[ "$(mount_status blocks_dirty)" = 0 ] || fail "changes left unsynced"
unmount "$T/mnt"

versions=$(scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["versions"])')
[ "$versions" = "[1, 2, 3, 4]" ] || fail "versions $versions, expected [1, 2, 3, 4]"
[ "$(version_sum 2)" = "$want2" ] || fail "version 2 is not the first sync point"
[ "$(version_sum 3)" = "$want3" ] || fail "version 3 is not the second sync point"
[ "$(version_sum 4)" = "$want4" ] || fail "version 4 is not the third sync point"
