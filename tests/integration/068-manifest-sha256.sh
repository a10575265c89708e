#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The client checks the manifest against the manifest_sha256 of the
# image's metadata before using any of its hashes: a manifest altered on
# the server's disk (as a proxy or cache could alter it) refuses the
# mount with a clear error and returns no bytes; the intact one mounts
# and reads right, and a second mount of the same version trusts the
# copy's checked pages without fetching the manifest again.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((8 * 1024 * 1024)) 68
import_image disk "$T/data/img.raw"
want=$(sha256sum <"$T/data/img.raw" | cut -d' ' -f1)
meta_sha=$(scurl "$SERVER_URL/v1/images/disk" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_sha256"])')
[ ${#meta_sha} = 64 ] || fail "metadata has no manifest_sha256"
man=$(find "$T/srv" -name 1.manifest -path '*disk*' | head -1)
[ -f "$man" ] || fail "no stored manifest for disk version 1"
[ "$(sha256sum <"$man" | cut -d' ' -f1)" = "$meta_sha" ] ||
	fail "manifest_sha256 is not the stored manifest's SHA-256"

# Altered: one byte of block 3's hash flipped (the server's cached ETag
# still names the original, as a proxy's copy would differ from it).
cp "$man" "$T/data/manifest.orig"
flip_manifest_entry "$man" 3
before=$(server_stat manifest_requests)
mount_refused 1 "manifest of version 1: .*SHA-256 is [0-9a-f]{16}\.\.\., not the manifest_sha256" \
	"$SERVER_URL/disk" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE"
[ "$(server_stat manifest_requests)" -gt "$before" ] ||
	fail "the refused mount did not fetch the manifest"
[ "$(server_stat data_requests)" = 0 ] ||
	fail "a refused mount fetched data"

# Intact: mounts, reads the image's bytes.
cp "$T/data/manifest.orig" "$man"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
got=$(sha256sum <"$T/mnt/disk.img" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "read $got, want $want"
unmount "$T/mnt"

# Again with the same copy: the check is recorded, the manifest not
# fetched whole again (only its header).
before=$(server_stat manifest_requests)
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
got=$(sha256sum <"$T/mnt/disk.img" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "second mount read $got, want $want"
unmount "$T/mnt"
n=$(($(server_stat manifest_requests) - before))
[ "$n" -le 1 ] || fail "second mount made $n manifest requests, want 1 (the header)"
