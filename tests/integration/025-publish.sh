#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vmferry publish` uploads a raw image over the API; publishing a changed
# copy uploads only the changed blocks and makes the next version, which
# mounts and reads back byte for byte.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/v1.raw" $((8 * 1024 * 1024 + 100)) 25
pub() {
	"$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		"$SERVER_URL/pub" "$1" 2>>"$T/logs/publish.err"
}
out=$(pub "$T/data/v1.raw") || fail "publish v1: $(cat "$T/logs/publish.err")"
echo "$out"
echo "$out" | grep -q "version 1" || fail "v1: $out"

# Change three blocks (64 KiB apart), publish again.
cp "$T/data/v1.raw" "$T/data/v2.raw"
for off in 0 $((65536 * 20)) $((65536 * 100)); do
	printf 'changed' | dd of="$T/data/v2.raw" bs=1 seek=$off conv=notrunc status=none
done
out=$(pub "$T/data/v2.raw") || fail "publish v2: $(cat "$T/logs/publish.err")"
echo "$out"
echo "$out" | grep -q "version 2" || fail "v2: $out"
uploaded=$(echo "$out" | sed -n 's/.* \([0-9]*\) uploaded.*/\1/p')
[ "$uploaded" -le 3 ] || fail "v2 uploaded $uploaded blocks for 3 changed"

mount_image "$SERVER_URL/pub" "$T/mnt" --no-hydrate
cmp "$T/mnt/pub.img" "$T/data/v2.raw" || fail "version 2 reads differently"
unmount "$T/mnt"

# Bad input: a file that does not exist, a bad URL.
"$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/pub" "$T/nonexistent" 2>"$T/logs/err" && fail "published a missing file"
grep -q "No such file" "$T/logs/err" || fail "unclear: $(cat "$T/logs/err")"
st=0
"$VMFERRY" publish --token-file "$ADMIN_TOKEN_FILE" "ftp://x/pub" "$T/data/v1.raw" 2>"$T/logs/err" || st=$?
[ $st -eq 2 ] || fail "bad URL should be a usage error (exit $st)"
exit 0
