#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A manifest that does not parse, or does not match the image's size,
# refuses the mount with a clear message.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((1024 * 1024)) 32
import_image disk "$T/data/img.raw"
man=$(ls "$T/srv/images/disk/versions/"*.manifest | head -n1)
[ -f "$man" ] || fail "no manifest file"
cp "$man" "$T/data/good.manifest"
common=(--cache "$T/cache" --key-file "$T/user.key" --cacert "$CACERT"
	--token-file "$ADMIN_TOKEN_FILE" "$SERVER_URL/disk" "$T/mnt")

# Broken magic: does not parse.
chmod u+w "$man"
printf 'XXXX' | dd of="$man" bs=1 seek=0 conv=notrunc status=none
if "$VMFERRY" mount "${common[@]}" >"$T/logs/out" 2>&1; then fail "mounted a bad manifest"; fi
grep -q "manifest" "$T/logs/out" || fail "unclear: $(cat "$T/logs/out")"
echo "ok: $(cat "$T/logs/out")"

# Parses, but says a different image size (and a consistent block count).
cp "$T/data/good.manifest" "$man"
python3 - "$man" <<'PY'
import struct, sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
size, nb = struct.unpack_from("<QQ", d, 16)
struct.pack_into("<QQ", d, 16, size - 1, nb)  # same block count
open(p, "wb").write(d)
PY
if "$VMFERRY" mount "${common[@]}" >"$T/logs/out" 2>&1; then fail "mounted a mismatched manifest"; fi
grep -q "does not match" "$T/logs/out" || fail "unclear: $(cat "$T/logs/out")"
echo "ok: $(cat "$T/logs/out")"
mountpoint -q "$T/mnt" && fail "a mount was left"
exit 0
