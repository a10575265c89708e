#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An exported version served by an FTP server (pyftpdlib on 127.0.0.1)
# mounts read-only and reads back byte for byte, by range (REST) and by
# background hydration.  Without TLS the mount wants the manifest's
# SHA-256 (or --insecure): refused with a clear error otherwise, and
# refused when the FTP server's manifest is not that one.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 curl

start_server "$T/srv"
size=$((9 * 1024 * 1024 + 777))
make_image "$T/data/img.raw" "$size" 61
import_image disk "$T/data/img.raw"
want=$(sha256sum <"$T/data/img.raw" | cut -d' ' -f1)
"$VMFERRY" export --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/disk" "$T/ftp" >"$T/logs/export.out" 2>&1 || fail "export"
sum=$(sed -n 's/^manifest sha256: //p' "$T/logs/export.out")
[ ${#sum} = 64 ] || fail "export printed no manifest sha256"
start_ftp "$T/ftp"
url="$FTP_URL/disk/vmferry.json"

# No TLS, no pin: refused before anything is fetched.
st=0
"$VMFERRY" mount -f "$url" "$T/mnt" --cache "$T/cache" "${MOUNT_KEY[@]}" \
	2>"$T/logs/nopin.err" || st=$?
[ "$st" = 2 ] || fail "mount without --manifest-sha256 exited $st, want 2"
grep -q -- "--manifest-sha256" "$T/logs/nopin.err" || fail "unclear error: $(cat "$T/logs/nopin.err")"

# Demand reads by range, cold.
mount_plain "$url" "$T/mnt" --manifest-sha256 "$sum" --no-hydrate
got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 through the FTP mount $got != $want"
unmount "$T/mnt"

# Hydration completes the copy (the directory form of the URL); then
# the copy reads back with the FTP server gone.
rm -rf "$T/cache"
mount_plain "$FTP_URL/disk/" "$T/mnt" --manifest-sha256 "$sum"
wait_hydrated 120
stop_ftp
got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 of the hydrated copy $got != $want"
unmount "$T/mnt"

# The FTP server's manifest replaced by another image's: refused.
start_ftp "$T/ftp"
make_image "$T/data/other.raw" "$size" 62
import_image other "$T/data/other.raw"
"$VMFERRY" export --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/other" "$T/o" >/dev/null 2>&1 || fail "export other"
cp "$T/o/other/1/manifest" "$T/ftp/disk/1/manifest"
st=0
"$VMFERRY" mount -f "$FTP_URL/disk/vmferry.json" "$T/mnt" --cache "$T/cache2" \
	"${MOUNT_KEY[@]}" --manifest-sha256 "$sum" 2>"$T/logs/swap.err" || st=$?
[ "$st" = 1 ] || fail "mount with a swapped manifest exited $st, want 1"
grep -q "manifest" "$T/logs/swap.err" || fail "unclear error: $(cat "$T/logs/swap.err")"
mountpoint -q "$T/mnt" && fail "mounted anyway"
exit 0
