#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A read-only mount pins the version it reads: retention keeps it while
# mounted, so uncached reads still get that version's bytes after newer
# versions pushed it out of the kept window; unmount releases the pin and
# the version can go.  The pins route's bad input gets clear errors, a
# token without a read grant is refused, a lapsed pin holds nothing, and
# an image holds at most 256 live pins.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
# No zero runs: every block is data the mount must fetch.
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/data/v1.raw"
import_image disk "$T/data/v1.raw" --block-size 4K

# --read-only with a token that may write: a pin, not a lease.
mount_image "$SERVER_URL/disk" "$T/mnt" --read-only --no-hydrate
head -c 8192 "$T/mnt/disk.img" | cmp - <(head -c 8192 "$T/data/v1.raw") || fail "first blocks differ"
pins() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(str(p["version"]) for p in d.values()))' "$T/srv/images/disk/pins.json"; }
[ "$(pins)" = 1 ] || fail "pins.json says '$(pins)', want version 1 pinned"
[ ! -e "$T/srv/images/disk/lease.json" ] || fail "a read-only mount took a lease"
"$VMFERRY_SERVER" lease list "$T/srv" >"$T/logs/lease-list.out" || fail "lease list"
grep -Eq "^disk +[^ ]+@[^ ]+ +1 " "$T/logs/lease-list.out" ||
	fail "lease list does not show the pin: $(cat "$T/logs/lease-list.out")"

# Three new versions; keep only the newest: version 1 survives, pinned.
for i in 2 3 4; do
	cp "$T/data/v1.raw" "$T/data/v$i.raw"
	head -c 4096 /dev/urandom | dd of="$T/data/v$i.raw" bs=4096 seek=$((i * 7)) conv=notrunc status=none
	import_image disk "$T/data/v$i.raw"
done
"$VMFERRY_SERVER" gc "$T/srv" --keep-versions 1 --grace 0 >"$T/logs/gc1.out" 2>&1 || fail "gc"
code() { scurl -o /dev/null -w '%{http_code}' "$SERVER_URL/v1/images/disk/versions/$1/manifest"; }
[ "$(code 1)" = 200 ] || fail "the pinned version 1 was dropped"
[ "$(code 2)" = 404 ] || fail "version 2 (not kept, not pinned) survived"
# Every uncached block now comes from version 1, byte for byte.
cmp "$T/mnt/disk.img" "$T/data/v1.raw" || fail "the read-only mount did not read version 1"
unmount "$T/mnt"
[ ! -e "$T/srv/images/disk/pins.json" ] || fail "unmount left the pin: $(cat "$T/srv/images/disk/pins.json")"
"$VMFERRY_SERVER" gc "$T/srv" --keep-versions 1 --grace 0 >"$T/logs/gc2.out" 2>&1 || fail "gc 2"
[ "$(code 1)" = 404 ] || fail "version 1 kept after its pin was released"

# The route's bad input.
post() { # post BODY [TOKEN]: the status of POST .../pins
	curl -sS --cacert "$CACERT" -o "$T/out" -w '%{http_code}' -X POST \
		-H "Authorization: Bearer ${2:-$(cat "$ADMIN_TOKEN_FILE")}" \
		-H 'Content-Type: application/json' -d "$1" "$SERVER_URL/v1/images/disk/pins"
}
expect() { # expect STATUS WHAT BODY [TOKEN]
	local st
	st=$(post "$3" "${4:-}")
	[ "$st" = "$1" ] || fail "$2: got $st, want $1: $(cat "$T/out")"
	grep -q '"error"' "$T/out" || [ "$1" = 200 ] || fail "$2: no error message: $(cat "$T/out")"
}
expect 400 "not JSON" 'nonsense'
expect 400 "no version" '{"holder":"a@b"}'
expect 400 "version 0" '{"holder":"a@b","version":0}'
expect 400 "empty holder" '{"holder":"","version":4}'
expect 400 "bad pin id" '{"holder":"a@b","version":4,"pin_id":"xyz"}'
expect 404 "dropped version" '{"holder":"a@b","version":1}'
grep -q "no version 1" "$T/out" || fail "404 does not name the version: $(cat "$T/out")"
OTHER=$("$VMFERRY_SERVER" token add "$T/srv" --name other --read otherimage 2>>"$T/logs/token.log")
expect 403 "token without a read grant" '{"holder":"a@b","version":4}' "$OTHER"
READER=$("$VMFERRY_SERVER" token add "$T/srv" --name reader --read disk 2>>"$T/logs/token.log")
expect 200 "a read token may pin" '{"holder":"a@b","version":4}' "$READER"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pin_id"])' "$T/out")
del() { scurl -o "$T/out" -w '%{http_code}' -X DELETE "$@" "$SERVER_URL/v1/images/disk/pins"; }
[ "$(del)" = 400 ] || fail "DELETE without a pin id: $(cat "$T/out")"
[ "$(del -H 'Vmferry-Pin-Id: nothex')" = 400 ] || fail "DELETE with a bad pin id"
[ "$(del -H "Vmferry-Pin-Id: $id")" = 200 ] || fail "DELETE of a pin"
grep -q '"released": *true' "$T/out" || fail "release: $(cat "$T/out")"
[ "$(del -H "Vmferry-Pin-Id: $id")" = 200 ] || fail "DELETE again"
grep -q '"released": *false' "$T/out" || fail "second release: $(cat "$T/out")"

# At most 256 live pins.
for i in $(seq 1 256); do
	st=$(post '{"holder":"a@b","version":4}')
	[ "$st" = 200 ] || fail "pin $i: $st $(cat "$T/out")"
done
expect 503 "pin 257" '{"holder":"a@b","version":4}'
rm -f "$T/srv/images/disk/pins.json"

# A lapsed pin holds nothing: pins last as long as leases (policy).
printf '{"lease_seconds": 1}\n' >"$T/srv/images/disk/policy.json"
expect 200 "short pin" '{"holder":"a@b","version":4}'
cp "$T/data/v1.raw" "$T/data/v5.raw"
import_image disk "$T/data/v5.raw"
sleep 2
"$VMFERRY_SERVER" gc "$T/srv" --keep-versions 1 --grace 0 >"$T/logs/gc3.out" 2>&1 || fail "gc 3"
[ "$(code 4)" = 404 ] || fail "a lapsed pin kept version 4"
[ "$(code 5)" = 200 ] || fail "the current version 5 was dropped"
