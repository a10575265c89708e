#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A manifest that does not parse, or does not match the image's size,
# refuses the mount with a clear message.  The real server refuses to
# serve a damaged manifest itself (HTTP 500), so a small broken server
# (tests/helpers/fake-server.py) stands in for one that lies.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

# A real server makes the certificate and a good manifest to start from.
start_server "$T/srv"
make_image "$T/data/img.raw" $((1024 * 1024)) 32
import_image disk "$T/data/img.raw"
cp "$T/srv/images/disk/versions/1.manifest" "$T/data/m" || fail "no manifest"
scurl "$SERVER_URL/v1/images/disk" >"$T/data/meta.json"
stop_server

python3 "$TOP/tests/helpers/fake-server.py" "$T/srv/cert.pem" "$T/srv/key.pem" \
	"$T/fake.ready" "$T/data/meta.json" "$T/data/m" 2>"$T/logs/fake.log" &
fake=$!
cleanup_fn "kill $fake 2>/dev/null"
wait_for_file "$T/fake.ready" || fail "fake server did not start"
url="https://127.0.0.1:$(cat "$T/fake.ready")/disk"
common=(--cache "$T/cache" --key-file "$T/user.key" --cacert "$T/srv/cert.pem"
	--token-file "$T/srv/admin.token" "$url" "$T/mnt")

try_mount() {
	if "$VMFERRY" mount "${common[@]}" >"$T/logs/out" 2>&1; then
		fail "mounted with $1"
	fi
	grep -q "$2" "$T/logs/out" || fail "$1: unclear message: $(cat "$T/logs/out")"
	mountpoint -q "$T/mnt" && fail "$1 left a mount"
	echo "ok ($1): $(tail -n1 "$T/logs/out")"
}

# Control: the good manifest mounts through the fake server.
mount_image "$url" "$T/mnt" --no-hydrate
[ "$(stat -c %s "$T/mnt/disk.img")" = $((1024 * 1024)) ] || fail "control mount: wrong size"
unmount "$T/mnt"

# Broken magic: does not parse.
cp "$T/data/m" "$T/data/m.good"
printf 'XXXX' | dd of="$T/data/m" bs=1 seek=0 conv=notrunc status=none
try_mount "a manifest that does not parse" "manifest does not parse"

# Parses, but gives a different image size (same block count).
python3 - "$T/data/m.good" "$T/data/m" <<'PY'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
size, nb = struct.unpack_from("<QQ", d, 16)
struct.pack_into("<QQ", d, 16, size - 1, nb)
open(sys.argv[2], "wb").write(d)
PY
try_mount "a manifest for another size" "does not match"

# Metadata that is not JSON.
cp "$T/data/m.good" "$T/data/m"
echo "not json" >"$T/data/meta.json"
try_mount "metadata that is not JSON" "not JSON"
