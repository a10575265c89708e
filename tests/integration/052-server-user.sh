#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# serve --user: root binds, reads the key, then becomes the user (its
# uid in /proc/PID/status) and serves; a data directory the user cannot
# use is refused with a clear message; only root may switch users.
source "$(dirname "$0")/../lib.sh"
requires curl python3
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root" >&2; exit 77; }
id nobody >/dev/null 2>&1 || { echo "SKIP: no user nobody" >&2; exit 77; }
NOBODY=$(id -u nobody)

make_image "$T/data/img" 100000 2
server_init "$T/srv"
"$VMFERRY_SERVER" import "$T/srv" demo "$T/data/img" >/dev/null 2>&1 || fail import
# The user must reach the directory, and write the ready file (in $T)
# once it is no longer root.
chmod 1777 "$T"

# A directory still owned by root: refused, naming the fix.
set +e
"$VMFERRY_SERVER" serve "$T/srv" --listen 127.0.0.1:0 --user nobody 2>"$T/err"
st=$?
set -e
[ "$st" = 1 ] || fail "served a root-owned directory as nobody (exit $st)"
grep -q "not readable and writable by user nobody.*chown -R nobody" "$T/err" ||
	fail "unclear error: $(cat "$T/err")"

# An unknown user is a usage error.
set +e
"$VMFERRY_SERVER" serve "$T/srv" --user no-such-user-vmf 2>/dev/null
st=$?
set -e
[ "$st" = 2 ] || fail "unknown user: exit $st"

# A copy owned by nobody: served as nobody.
cp -a "$T/srv" "$T/srv2"
chown -R nobody: "$T/srv2"
start_server "$T/srv2" --user nobody
uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$SERVER_PID/status")
[ "$uid" = "$NOBODY $NOBODY $NOBODY $NOBODY" ] || fail "server uids: $uid"
gid=$(awk '/^Gid:/ {print $2}' "/proc/$SERVER_PID/status")
[ "$gid" = "$(id -g nobody)" ] || fail "server gid: $gid"
grep -q 'running as user nobody' "$T/logs/server.log" || fail "no log of the drop"
[ "$(scurl "$SERVER_URL/v1/images/demo/versions/1/data" | cmp - "$T/data/img" && echo same)" = same ] ||
	fail "nobody does not serve the data"
# Writes work, and what is written belongs to nobody.
printf 'user block' >"$T/blk"
H=$(sha256sum <"$T/blk" | cut -d' ' -f1)
[ "$(scurl -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/blk" "$SERVER_URL/v1/blocks/$H")" = 201 ] ||
	fail "upload as nobody"
[ "$(stat -c %U "$T/srv2/blocks/${H:0:2}/$H")" = nobody ] || fail "block owner"
[ "$(stat -c %U "$T/srv2/audit.log")" = nobody ] || fail "audit.log owner"
stop_server

# Not root: --user another user is refused.
if command -v setpriv >/dev/null; then
	set +e
	setpriv --reuid="$NOBODY" --regid="$(id -g nobody)" --clear-groups \
		"$VMFERRY_SERVER" serve "$T/srv2" --listen 127.0.0.1:0 --user root 2>"$T/err"
	st=$?
	set -e
	[ "$st" = 1 ] && grep -q "only root can become another user" "$T/err" ||
		fail "non-root --user root: exit $st: $(cat "$T/err")"
fi
echo ok
