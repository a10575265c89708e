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

size=$((9 * 1024 * 1024 + 777))
exported_image "$size" 61 "$T/ftp"
sum=$EXPORT_SHA
start_ftp "$T/ftp"
url="$FTP_URL/disk/vmferry.json"

# No TLS, no pin: refused before anything is fetched.
mount_refused 2 "give its SHA-256 with --manifest-sha256" "$url"

# Demand reads by range, cold.
mount_plain "$url" "$T/mnt" --manifest-sha256 "$sum" --no-hydrate
got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$WANT" ] || fail "sha256 through the FTP mount $got != $WANT"
unmount "$T/mnt"

# Hydration completes the copy (the directory form of the URL); then
# the copy reads back with the FTP server gone.
rm -rf "$T/cache"
mount_plain "$FTP_URL/disk/" "$T/mnt" --manifest-sha256 "$sum"
wait_hydrated 120
stop_ftp
got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$WANT" ] || fail "sha256 of the hydrated copy $got != $WANT"
unmount "$T/mnt"
# Discard finds a plain export's copy by its URL, and destroys it.
"$VMFERRY" discard --cache "$T/cache" "$FTP_URL/disk/" >"$T/logs/discard.out" 2>&1 ||
	fail "discard: $(cat "$T/logs/discard.out")"
[ -z "$(ls -A "$T/cache"/*/ 2>/dev/null)" ] || fail "the copy is still there: $(ls -R "$T/cache")"

# The FTP server's manifest replaced by another image's: refused.
start_ftp "$T/ftp"
make_image "$T/data/other.raw" "$size" 62
import_image other "$T/data/other.raw"
export_image other "$T/o"
cp "$T/o/other/1/manifest" "$T/ftp/disk/1/manifest"
mount_refused 1 "the manifest .* does not match the descriptor" \
	"$FTP_URL/disk/vmferry.json" \
	--manifest-sha256 "$sum"
exit 0
