#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Boot profiles: a mount records the order it first reads blocks in and
# uploads it at unmount; the server holds it, merges uploads from
# several clients, and offers it for later versions; a cold mount
# fetches the profile's blocks first, before (and unpaced by) background
# hydration, with the right bytes.  docs/protocol.md, "Boot profiles".
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv" --verbose
BS=65536
head -c $((64 * BS)) /dev/urandom >"$T/data/img.raw"
import_image disk "$T/data/img.raw"
PURL="$SERVER_URL/v1/images/disk/versions/1/profile"

# read_blocks B...: one O_DIRECT read of each block, in that order,
# checked against the reference.
read_blocks() {
	local b
	for b in "$@"; do
		cmp <(dd if="$T/mnt/disk.img" bs=$BS skip="$b" count=1 iflag=direct status=none) \
			<(dd if="$T/data/img.raw" bs=$BS skip="$b" count=1 status=none) ||
			fail "block $b differs"
	done
}
blocks_of() { python3 -c 'import json,sys; print(*json.load(sys.stdin)["blocks"])'; }

# 1. A session reads blocks in a known order; at unmount the server
#    holds exactly that order.
ORDER1=(40 7 8 9 23 0)
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --profile-seconds 0
read_blocks "${ORDER1[@]}"
[ "$(mount_status profile_recorded)" = ${#ORDER1[@]} ] || fail "recorded $(mount_status profile_recorded)"
"$VMFERRY" status "$T/mnt" | grep -q "^recorded: ${#ORDER1[@]} blocks" || fail "status text"
unmount "$T/mnt"
got=$(scurl "$PURL" | blocks_of)
[ "$got" = "${ORDER1[*]}" ] || fail "profile after one session: '$got', want '${ORDER1[*]}'"

# 2. A cold mount with hydration crawling (--max-rate 16K) fetches the
#    profile first: its first data requests on the server are the
#    profile's runs, in order, and they are done long before 16K/s could.
rm -rf "$T/cache"
before=$(wc -l <"$T/logs/server.log")
mount_image "$SERVER_URL/disk" "$T/mnt" --max-rate 16K --profile-seconds 0
for ((i = 0; i < 300; i++)); do
	[ "$(mount_status profile_done)" = True ] && break
	sleep 0.1
done
# At 16K/s the profile's 384 KiB would take 24 s if it were paced.
[ "$(mount_status profile_done)" = True ] || fail "profile not fetched in 30 s"
[ "$(mount_status profile_fetched)" = ${#ORDER1[@]} ] || fail "profile_fetched $(mount_status profile_fetched)"
"$VMFERRY" status "$T/mnt" | grep -q "^profile:  6 of 6 boot-profile blocks prefetched$" ||
	fail "status text: $("$VMFERRY" status "$T/mnt")"
# The runs the profile makes: 40, 7-9, 23, 0.
want="bytes=$((40 * BS))-$((41 * BS - 1)) bytes=$((7 * BS))-$((10 * BS - 1))"
want+=" bytes=$((23 * BS))-$((24 * BS - 1)) bytes=0-$((BS - 1))"
first=$(tail -n +$((before + 1)) "$T/logs/server.log" | grep '/versions/1/data 206' |
	head -n 4 | awk '{print $NF}' | sort | tr '\n' ' ')
[ "$first" = "$(echo "$want" | tr ' ' '\n' | sort | tr '\n' ' ')" ] ||
	fail "first data requests: $first; want the profile's: $want"
# Then everything, read in block order (the second client's profile).
cmp <(dd if="$T/mnt/disk.img" bs=$BS iflag=direct status=none) "$T/data/img.raw" ||
	fail "content differs"
unmount "$T/mnt"

# 3. Merging: the second session read 0..63; a third client sends its
#    own.  The merged order is the one the documented rule gives.
scurl -X PUT --data '{"version": 1, "blocks": [9, 50, 40]}' -o "$T/put.json" -w '%{http_code}' "$PURL" >"$T/code"
[ "$(cat "$T/code")" = 200 ] || fail "PUT profile: $(cat "$T/code") $(cat "$T/put.json")"
want=$(python3 - "${ORDER1[*]}" <<'PY'
import sys
ups = [[int(x) for x in sys.argv[1].split()], list(range(64)), [9, 50, 40]]
rank = {}
for up in ups:
    for i, b in enumerate(up):
        s, n = rank.get(b, (0, 0))
        rank[b] = (s + i, n + 1)
# Mean rank, then more uploads, then lower block (docs/protocol.md).
print(*sorted(rank, key=lambda b: (rank[b][0] / rank[b][1], -rank[b][1], b)))
PY
)
got=$(scurl "$PURL" | blocks_of)
[ "$got" = "$want" ] || fail "merged profile: '$got', want '$want'"
[ "$(scurl "$PURL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["uploads"])')" = 3 ] ||
	fail "uploads not 3"

# 4. A new version has no profile yet: its profile is version 1's.
dd if=/dev/urandom of="$T/data/img.raw" bs=$BS seek=5 count=1 conv=notrunc status=none
import_image disk "$T/data/img.raw"
got=$(scurl "$SERVER_URL/v1/images/disk/versions/2/profile" |
	python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["version"], len(j["blocks"]))')
[ "$got" = "1 $(echo "$want" | wc -w)" ] || fail "version 2's profile: $got"
rm -rf "$T/cache"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-profile
wait_hydrated 60 # a prefetch would have come first
[ "$(mount_status profile_blocks)" = 0 ] || fail "--no-profile prefetched"
read_blocks 5 40
[ "$(mount_status profile_recorded)" = 0 ] || fail "--no-profile recorded"
unmount "$T/mnt"
[ "$(scurl -o /dev/null -w '%{http_code}' "$SERVER_URL/v1/images/disk/versions/2/profile")" = 200 ] || fail "v2"
scurl "$SERVER_URL/v1/images/disk/versions/2/profile" | grep -q '"version":1' ||
	fail "--no-profile uploaded a profile of version 2"
