#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vmferry list` shows every local copy (image, version, size, cached,
# unsynced, mode, time left, mounted) and warns under a day left;
# `vmferry purge` destroys, key first, an ephemeral copy a crash left
# behind (but keeps one with unsynced changes), a copy whose record was
# edited (checked with the key), and, with the server stopped, a copy
# offline for longer than its policy allows -- which any vmferry command
# also does as it starts.  `make install` installs the hourly purge units,
# and systemd-analyze verifies them.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
port=$SERVER_PORT
for n in keep crash dirty soon; do
	make_image "$T/data/$n.raw" $((1024 * 1024)) 47
	import_image "$n" "$T/data/$n.raw"
done
c() { echo "$T/cache/127.0.0.1_$port/$1"; }
lst() { "$VMFERRY" list --cache "$T/cache" "$@"; }
field() { # field IMAGE KEY: from list --json
	lst --json | python3 -c 'import json,sys
for c in json.load(sys.stdin)["copies"]:
    if c["url"].endswith("/" + sys.argv[1]): print(c.get(sys.argv[2]))' "$1" "$2"
}

# keep: a kept, complete copy.
mount_image "$SERVER_URL/keep" "$T/mnt"
wait_hydrated 30
unmount "$T/mnt"
# crash, dirty: ephemeral mounts killed; dirty has unsynced changes.
for n in crash dirty; do
	mount_image "$SERVER_URL/$n" "$T/mnt" --ephemeral --sync-interval 0
	[ "$n" = dirty ] && { printf 'unsynced' | dd of="$T/mnt/$n.img" bs=1 seek=10 conv=notrunc,fsync status=none || fail "write"; }
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	MOUNT_PID=
	fusermount3 -uz "$T/mnt" || true
done
# soon: expires in an hour.
printf '{"expires": %d}\n' $(($(date +%s) + 3600)) >"$T/srv/images/soon/policy.json"
mount_image "$SERVER_URL/soon" "$T/mnt" --read-only
"$VMFERRY" status "$T/mnt" | grep -q "WARNING:  the local copy will be destroyed in" || fail "status does not warn"

lst >"$T/logs/list.out" || fail "list"
cat "$T/logs/list.out"
for n in keep crash dirty soon; do grep -q "/$n " "$T/logs/list.out" || fail "list misses $n"; done
grep -E "/keep +1 +1.0 MiB +100% +0 +keep +never +-" "$T/logs/list.out" || fail "keep's line"
grep -E "/soon .* mounted +WARNING: expires soon" "$T/logs/list.out" || fail "soon's line"
[ "$(field dirty unsynced_blocks)" = 1 ] || fail "dirty's unsynced count: $(field dirty unsynced_blocks)"
[ "$(field crash ephemeral)" = True ] || fail "crash not ephemeral"
[ "$(field soon mounted)" = True ] || fail "soon not mounted"
unmount "$T/mnt"

# purge: the clean ephemeral copy goes, the dirty one stays (loudly).
"$VMFERRY" purge --cache "$T/cache" --key-file "$T/user.key" --dry-run >"$T/logs/dry.out" 2>&1 || fail "dry run"
grep -q "would destroy $(c crash): an ephemeral copy left behind" "$T/logs/dry.out" || fail "dry run: $(cat "$T/logs/dry.out")"
[ -e "$(c crash)/data.key" ] || fail "--dry-run destroyed something"
"$VMFERRY" purge --cache "$T/cache" --key-file "$T/user.key" >"$T/logs/purge.out" 2>&1 || fail "purge"
[ ! -e "$(c crash)" ] || fail "the crashed ephemeral copy survived purge"
[ -e "$(c dirty)/data.key" ] || fail "purge destroyed unsynced changes"
grep -q "1 unsynced blocks: kept" "$T/logs/purge.out" || fail "no warning for the dirty copy: $(cat "$T/logs/purge.out")"
[ -e "$(c keep)/data.key" ] && [ -e "$(c soon)/data.key" ] || fail "purge destroyed a valid copy"

# An edited record: purge with the key destroys it.
python3 - "$(c soon)/lifecycle.json" <<'PY'
import json, sys
p = sys.argv[1]; d = json.load(open(p)); d["expires"] += 86400 * 365
json.dump(d, open(p, "w"))
PY
"$VMFERRY" purge --cache "$T/cache" --key-file "$T/user.key" >"$T/logs/purge2.out" 2>&1 || fail "purge 2"
grep -q "soon: its lifecycle record was edited" "$T/logs/purge2.out" || fail "edit: $(cat "$T/logs/purge2.out")"
[ ! -e "$(c soon)" ] || fail "the edited copy survived"

# Offline too long, server stopped: the next command of any kind
# destroys it before doing its own work.
printf '{"max_offline": 2}\n' >"$T/srv/images/keep/policy.json"
mount_image "$SERVER_URL/keep" "$T/mnt" --read-only
unmount "$T/mnt"
stop_server
sleep 3
# A mount of it is refused (the sweep destroys it first, then nothing is
# left to start from offline).
mkdir -p "$T/mnt"
if "$VMFERRY" mount -f "$SERVER_URL/keep" "$T/mnt" --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" >"$T/logs/expired-mount.log" 2>&1; then
	fail "mounted a copy past its offline limit"
fi
grep -q "destroyed the local copy in $(c keep): offline for longer than" "$T/logs/expired-mount.log" ||
	fail "sweep: $(cat "$T/logs/expired-mount.log")"
grep -q "no local copy to start from" "$T/logs/expired-mount.log" || fail "mount: $(cat "$T/logs/expired-mount.log")"
[ ! -e "$(c keep)" ] || fail "the offline copy survived"
"$VMFERRY" list --cache "$T/cache" >"$T/logs/list2.out" 2>&1 || fail "list 2"
! grep -q "/keep " "$T/logs/list2.out" || fail "list still shows it"

# make install: binaries and the hourly purge units, which systemd verifies.
if command -v systemd-analyze >/dev/null; then
	make -C "$TOP" --no-print-directory B="${VMFERRY_BUILD:-build}" install-files PREFIX="$T/root/usr" >"$T/logs/install.log" 2>&1 ||
		fail "make install: $(tail -3 "$T/logs/install.log")"
	u="$T/root/usr/lib/systemd/user"
	[ -x "$T/root/usr/bin/vmferry" ] || fail "vmferry not installed"
	grep -q "^ExecStart=$T/root/usr/bin/vmferry purge$" "$u/vmferry-purge.service" || fail "ExecStart"
	systemd-analyze verify --man=no "$u/vmferry-purge.service" "$u/vmferry-purge.timer" >"$T/logs/verify.log" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$T/logs/verify.log")"
	grep -q "^OnUnitActiveSec=1h" "$u/vmferry-purge.timer" || fail "not hourly"
fi
