#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Retention while serving: serve --keep-versions N drops older versions
# after each API commit (their URLs answer 404, the kept ones read back
# byte for byte); an image's policy.json keep_versions overrides it; a
# version named in a live lease is kept; gc --grace keeps fresh blocks.
source "$(dirname "$0")/../lib.sh"
requires python3

server_init "$T/srv"
import_image_cli() { "$VMFERRY_SERVER" import "$T/srv" "$@" >>"$T/logs/import.log" 2>&1 || fail "import $*"; }
make_image "$T/data/v0.raw" $((256 * 1024)) 17
import_image_cli disk "$T/data/v0.raw" --block-size 4K
import_image_cli other "$T/data/v0.raw" --block-size 4K
printf '{"keep_versions": 4}\n' >"$T/srv/images/other/policy.json"
start_server "$T/srv" --keep-versions 2

# publish VERSION_FILE IMAGE: one API commit of a changed copy.
publish() {
	"$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		"$SERVER_URL/$2" "$1" >>"$T/logs/publish.log" 2>&1 || fail "publish $1 $2"
}
status_of() { scurl -o /dev/null -w '%{http_code}' "$SERVER_URL/v1/images/$1/versions/$2/manifest"; }
for i in 1 2 3 4 5; do
	cp "$T/data/v0.raw" "$T/data/v$i.raw"
	printf 'change %d' "$i" | dd of="$T/data/v$i.raw" bs=1 seek=$((i * 4096)) conv=notrunc status=none
	publish "$T/data/v$i.raw" disk
	publish "$T/data/v$i.raw" other
done
# disk: versions 1..6, the last 2 kept; other: the last 4 (policy).
for v in 1 2 3 4; do [ "$(status_of disk $v)" = 404 ] || fail "disk version $v not dropped"; done
for v in 5 6; do [ "$(status_of disk $v)" = 200 ] || fail "disk version $v dropped"; done
for v in 1 2; do [ "$(status_of other $v)" = 404 ] || fail "other version $v not dropped"; done
for v in 3 4 5 6; do [ "$(status_of other $v)" = 200 ] || fail "other version $v dropped (policy keeps 4)"; done
cmp <(scurl "$SERVER_URL/v1/images/disk/versions/5/data") "$T/data/v4.raw" || fail "kept version 5 differs"
cmp <(scurl "$SERVER_URL/v1/images/disk/versions/6/data") "$T/data/v5.raw" || fail "kept version 6 differs"

# A version named in a live lease is kept.
lease=$(scurl -X POST -H 'Content-Type: application/json' \
	-d '{"holder":"t@h","where":"local","version":6}' "$SERVER_URL/v1/images/disk/lease" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["lease_id"])')
for i in 6 7; do
	cp "$T/data/v0.raw" "$T/data/v$i.raw"
	printf 'change %d' "$i" | dd of="$T/data/v$i.raw" bs=1 seek=$((i * 4096)) conv=notrunc status=none
	"$VMFERRY_SERVER" import "$T/srv" disk "$T/data/v$i.raw" >>"$T/logs/import.log" 2>&1 || fail "import $i"
done
"$VMFERRY_SERVER" gc "$T/srv" --keep-versions 2 --grace 0 >"$T/logs/gc.out" 2>&1 || fail "gc"
# Versions 7 and 8 are the last two; 6 is leased; 5 is neither.
[ "$(status_of disk 6)" = 200 ] || fail "the leased version 6 was dropped"
[ "$(status_of disk 5)" = 404 ] || fail "version 5 (neither kept nor leased) survived"
[ "$(status_of disk 8)" = 200 ] || fail "the current version 8 was dropped"

# gc --grace keeps blocks younger than the grace: a block uploaded for a
# commit that has not happened yet survives.
head -c 4096 /dev/urandom >"$T/data/orphan"
hash=$(sha256sum <"$T/data/orphan" | cut -d' ' -f1)
scurl -X PUT --data-binary @"$T/data/orphan" "$SERVER_URL/v1/blocks/$hash" >/dev/null
"$VMFERRY_SERVER" gc "$T/srv" --grace 3600 >"$T/logs/gc2.out" 2>&1 || fail "gc grace"
[ -f "$T/srv/blocks/${hash:0:2}/$hash" ] || fail "gc removed a fresh block inside the grace period"
"$VMFERRY_SERVER" gc "$T/srv" --grace 0 >"$T/logs/gc3.out" 2>&1 || fail "gc no grace"
[ ! -f "$T/srv/blocks/${hash:0:2}/$hash" ] || fail "an unreferenced block survived gc --grace 0"
scurl -X DELETE -H "Vmferry-Lease-Id: $lease" "$SERVER_URL/v1/images/disk/lease" >/dev/null
