#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fio writes random 4 KiB blocks through the mount with O_DIRECT and
# verifies every one (crc32c); after `vmferry sync` a second client with
# an empty cache reads exactly the first client's view.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires fio

start_server "$T/srv"
make_image "$T/data/img.raw" $((16 * 1024 * 1024)) 32
import_image disk "$T/data/img.raw"
mount_image "$SERVER_URL/disk" "$T/mnt" --sync-interval 0
fio --name=verify --filename="$T/mnt/disk.img" --rw=randwrite --bs=4k \
	--size=16M --io_size=8M --direct=1 --ioengine=psync --iodepth=1 \
	--numjobs=1 --verify=crc32c --do_verify=1 --verify_fatal=1 \
	--randseed=32 --output="$T/logs/fio.out" || fail "fio: $(tail -n 20 "$T/logs/fio.out")"
grep -q "err= 0" "$T/logs/fio.out" || fail "fio reported errors"
view=$(sha256sum <"$T/mnt/disk.img" | cut -d' ' -f1)
"$VMFERRY" sync "$T/mnt" || fail "sync"
unmount "$T/mnt"

mkdir -p "$T/b/mnt"
"$VMFERRY" mount "$SERVER_URL/disk" "$T/b/mnt" --cache "$T/b/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" --read-only || fail "second client"
got=$(sha256sum <"$T/b/mnt/disk.img" | cut -d' ' -f1)
"$VMFERRY" umount "$T/b/mnt"
[ "$got" = "$view" ] || fail "second client reads $got, first client saw $view"
