#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: start a local vmferry server, publish the bootable test
# image on it, mount it with a cold cache and boot it in QEMU straight
# from the mount.  Prints the seconds to the guest's marker line and the
# bytes fetched, against booting the local file.  Stops everything it
# started and unmounts.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
B=$TOP/${VMFERRY_BUILD:-build}
IMG=$TOP/build/test-image/test.img
W=$TOP/build/demo
VMFERRY=$B/vmferry
SERVER=$B/vmferry-server

[ -x "$VMFERRY" ] && [ -x "$SERVER" ] || { echo "demo: run make first" >&2; exit 1; }
[ -f "$IMG" ] || "$TOP/tests/qemu/mkimage.sh" "$IMG" 1024

rm -rf "$W"
mkdir -p "$W/mnt"
server_pid= mounted=
cleanup() {
	set +e
	if [ -n "$mounted" ]; then "$VMFERRY" umount "$W/mnt" 2>/dev/null || fusermount3 -uz "$W/mnt"; fi
	if [ -n "$server_pid" ]; then kill "$server_pid"; wait "$server_pid" 2>/dev/null; fi
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

say "server: init and start on 127.0.0.1"
"$SERVER" init "$W/srv"
"$SERVER" serve "$W/srv" --listen 127.0.0.1:0 --ready-file "$W/ready" 2>"$W/server.log" &
server_pid=$!
for _ in $(seq 300); do [ -s "$W/ready" ] && break; sleep 0.1; done
[ -s "$W/ready" ] || { echo "demo: server did not start" >&2; cat "$W/server.log" >&2; exit 1; }
url="https://127.0.0.1:$(cat "$W/ready")"
echo "listening on $url"

say "publish the test image ($(du -h --apparent-size "$IMG" | cut -f1), mostly empty)"
"$SERVER" import "$W/srv" demo "$IMG"

accel=${VMFERRY_ACCEL:-$("$TOP/tests/qemu/accel.sh" "$IMG")}
export VMFERRY_ACCEL=$accel VMFERRY_QEMU_READONLY=1 VMFERRY_QEMU_CACHE=none
echo "accelerator: $accel (chosen by a probe boot; set VMFERRY_ACCEL to override)"

say "baseline: boot the local file"
VMFERRY_BOOT_LOG="$W/console-local.log" "$TOP/tests/qemu/boot.sh" "$IMG" >"$W/boot-local.out" 2>&1
local_s=$(sed -n 's/.*marker after \([0-9.]*\) s.*/\1/p' "$W/boot-local.out")
echo "local file: marker after ${local_s} s"

say "mount $url/demo with a cold cache (no download first; hydration in the background)"
t0=$(date +%s.%N)
"$VMFERRY" mount "$url/demo" "$W/mnt" --cache "$W/cache" --key-file "$W/user.key" \
	--cacert "$W/srv/cert.pem" --token-file "$W/srv/admin.token" \
	--log "$W/mount.log"
mounted=1
t1=$(date +%s.%N)
printf 'mounted in %.2f s: %s\n' "$(echo "$t1 - $t0" | bc)" "$(ls -l "$W/mnt/demo.img")"

say "boot QEMU from the mounted file"
VMFERRY_BOOT_LOG="$W/console-vmferry.log" "$TOP/tests/qemu/boot.sh" "$W/mnt/demo.img" >"$W/boot-vmferry.out" 2>&1 ||
	{ cat "$W/boot-vmferry.out"; exit 1; }
vmf_s=$(sed -n 's/.*marker after \([0-9.]*\) s.*/\1/p' "$W/boot-vmferry.out")
fetched=$("$VMFERRY" status --json "$W/mnt" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_fetched"])')
size=$(stat -c %s "$IMG")
grep -m1 VMFERRY-BOOT-OK "$W/console-vmferry.log"

say "result"
printf 'boot from vmferry mount (cold cache): marker after %s s\n' "$vmf_s"
printf 'boot from the local file:             marker after %s s\n' "$local_s"
printf 'fetched when the marker appeared: %s MiB of a %s MiB image (%.1f%%; zero blocks never travel)\n' \
	$((fetched / 1048576)) $((size / 1048576)) "$(echo "100 * $fetched / $size" | bc -l)"
"$VMFERRY" status "$W/mnt"
echo
echo "(logs and console output are in $W)"
