#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A copy protected by a passphrase (a file, or asked on the terminal with
# no echo, twice for a new copy): a wrong passphrase, or the other kind of
# key, is a clear error that changes no file of the copy; the right one
# reads the cached blocks without fetching them again.  The passphrase
# never reaches a log.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 setsid

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 35
import_image disk "$T/data/img.raw"
import_image other "$T/data/img.raw"
import_image third "$T/data/img.raw"
PTY=(python3 "$TOP/tests/ptyrun.py")
PASS="correct horse battery staple"
printf '%s\n' "$PASS" >"$T/pass"
printf 'wrong horse\n' >"$T/wrong"
chmod 600 "$T/pass" "$T/wrong"
common=(--cache "$T/cache" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE")

# mnt_fails NAME ARGS...: a foreground mount of disk that must fail;
# its stderr in $T/logs/NAME.err.
mnt_fails() {
	local name=$1
	shift
	if "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" "${common[@]}" "$@" \
		</dev/null >"$T/logs/$name.err" 2>&1; then
		fusermount3 -u "$T/mnt" 2>/dev/null
		fail "$name: the mount succeeded"
	fi
}

mnt_fails both --key-file "$T/user.key" --passphrase-file "$T/pass"
grep -q "exclude each other" "$T/logs/both.err" || fail "both: $(cat "$T/logs/both.err")"
cp "$T/pass" "$T/loose"
chmod 644 "$T/loose"
mnt_fails loose --passphrase-file "$T/loose"
grep -q "passphrase file $T/loose is readable by others" "$T/logs/loose.err" ||
	fail "loose: $(cat "$T/logs/loose.err")"
[ -z "$(find "$T/cache" -name data.key 2>/dev/null)" ] || fail "a refused mount made a key"

# A new copy under a passphrase file: cache half the image, change a block.
MOUNT_KEY=(--passphrase-file "$T/pass")
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
head -c 1048576 "$T/mnt/disk.img" | cmp - <(head -c 1048576 "$T/data/img.raw") ||
	fail "first read"
printf 'changed under a passphrase' |
	dd of="$T/mnt/disk.img" bs=1 seek=70000 conv=notrunc,fsync status=none
unmount "$T/mnt"
dir=$(ls -d "$T"/cache/*/disk)
python3 - "$dir/data.key" <<'PY' || fail "data.key does not record a passphrase"
import sys
b = open(sys.argv[1], "rb").read()
assert len(b) == 96 and b[:8] == b"VMFDKEY2" and b[8] == 2 and b[9] == 1, b[:12]
PY
cp "$T/data/img.raw" "$T/data/want.raw"
printf 'changed under a passphrase' |
	dd of="$T/data/want.raw" bs=1 seek=70000 conv=notrunc status=none

snapshot() {
	(cd "$dir" && find . -type f | sort | xargs sha256sum)
}
snapshot >"$T/before"
check_unchanged() {
	snapshot >"$T/after"
	cmp -s "$T/before" "$T/after" ||
		fail "$1 changed the copy: $(diff "$T/before" "$T/after")"
}

# A wrong passphrase: a clear error, nothing written.
mnt_fails wrong --passphrase-file "$T/wrong"
grep -q "wrong passphrase for the local copy in $dir" "$T/logs/wrong.err" ||
	fail "wrong: $(cat "$T/logs/wrong.err")"
check_unchanged "a wrong passphrase"
# The other kind of key: said before any key file is created.
mnt_fails kind --key-file "$T/user.key"
grep -q "the local copy in $dir is protected by a passphrase" "$T/logs/kind.err" ||
	fail "kind: $(cat "$T/logs/kind.err")"
[ ! -e "$T/user.key" ] || fail "a key file was created for a passphrase copy"
check_unchanged "a key file"
# A wrong passphrase typed on the terminal: not echoed, refused.
st=0
"${PTY[@]}" "$T/logs/tty-wrong.txt" "wrong horse" -- "$VMFERRY" mount -f \
	"$SERVER_URL/disk" "$T/mnt" "${common[@]}" --passphrase || st=$?
[ "$st" -ne 0 ] || fail "a wrong passphrase on the terminal mounted"
grep -q "Passphrase for the local copy in $dir: " "$T/logs/tty-wrong.txt" ||
	fail "no prompt: $(cat "$T/logs/tty-wrong.txt")"
grep -q "wrong passphrase for the local copy in $dir" "$T/logs/tty-wrong.txt" ||
	fail "tty wrong: $(cat "$T/logs/tty-wrong.txt")"
! grep -q "wrong horse" "$T/logs/tty-wrong.txt" || fail "the passphrase was echoed"
check_unchanged "a wrong passphrase on the terminal"
grep -q "^\[ptyrun: echo on\]" "$T/logs/tty-wrong.txt" || fail "echo left off"
# ^C at the prompt: the terminal's echo is back, the command ends.
st=0
"${PTY[@]}" "$T/logs/tty-int.txt" "^C" -- "$VMFERRY" mount -f \
	"$SERVER_URL/disk" "$T/mnt" "${common[@]}" --passphrase || st=$?
# (130: killed by SIGINT; 1 if this shell ignores SIGINT, as then does
# the command.)
[ "$st" = 130 ] || [ "$st" = 1 ] || fail "^C: status $st: $(cat "$T/logs/tty-int.txt")"
grep -q "^\[ptyrun: echo on\]" "$T/logs/tty-int.txt" || fail "^C left the echo off"
check_unchanged "an interrupted prompt"
# No terminal to ask on.
if setsid -w "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" "${common[@]}" \
	--passphrase </dev/null >"$T/logs/notty.err" 2>&1; then
	fail "mounted without a terminal to ask on"
fi
grep -q "no terminal to ask for the passphrase on: use --passphrase-file" \
	"$T/logs/notty.err" || fail "notty: $(cat "$T/logs/notty.err")"
check_unchanged "a mount without a terminal"

# The right passphrase (file): the cached half and the change read back
# with no block fetched (the server counts block requests; only the new
# version's manifest travels).
d0=$(server_stat data_requests)
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --read-only
head -c 1048576 "$T/mnt/disk.img" | cmp - <(head -c 1048576 "$T/data/want.raw") ||
	fail "cached data after a wrong passphrase"
[ "$(server_stat data_requests)" = "$d0" ] || fail "blocks were fetched again"
unmount "$T/mnt"

# The right passphrase on the terminal, mounting in the background.
"${PTY[@]}" "$T/logs/tty-right.txt" "$PASS" -- "$VMFERRY" mount \
	"$SERVER_URL/disk" "$T/mnt" "${common[@]}" --passphrase --no-hydrate \
	--read-only --log "$T/logs/tty-daemon.log" || fail "tty mount: $(cat "$T/logs/tty-right.txt")"
cleanup_fn "fusermount3 -uz $T/mnt 2>/dev/null || true"
head -c 1048576 "$T/mnt/disk.img" | cmp - <(head -c 1048576 "$T/data/want.raw") ||
	fail "tty mount: cached data"
! grep -q "$PASS" "$T/logs/tty-right.txt" || fail "the passphrase was echoed"
"$VMFERRY" umount "$T/mnt" || fail "umount"

# A new copy from the terminal: asked twice; two different answers
# create nothing, the same twice create it.
st=0
"${PTY[@]}" "$T/logs/tty-differ.txt" "one thing" "another" -- "$VMFERRY" mount -f \
	"$SERVER_URL/other" "$T/mnt" "${common[@]}" --passphrase || st=$?
[ "$st" -ne 0 ] || fail "different passphrases mounted"
grep -q "the two passphrases differ" "$T/logs/tty-differ.txt" ||
	fail "differ: $(cat "$T/logs/tty-differ.txt")"
[ ! -e "$T/cache/127.0.0.1_$SERVER_PORT/other/data.key" ] || fail "differ: a key was written"
"${PTY[@]}" "$T/logs/tty-new.txt" "new one" "new one" -- "$VMFERRY" mount \
	"$SERVER_URL/other" "$T/mnt" "${common[@]}" --passphrase --no-hydrate \
	--read-only --log "$T/logs/tty-new.log" || fail "tty new: $(cat "$T/logs/tty-new.txt")"
grep -q "New passphrase for the local copy in" "$T/logs/tty-new.txt" &&
	grep -q "Repeat the new passphrase: " "$T/logs/tty-new.txt" ||
	fail "new: prompts: $(cat "$T/logs/tty-new.txt")"
cmp "$T/mnt/other.img" "$T/data/img.raw" || fail "new copy content"
"$VMFERRY" umount "$T/mnt" || fail "umount other"

# A key-file copy asked to open with a passphrase says so.
MOUNT_KEY=(--key-file "$T/user.key")
mount_image "$SERVER_URL/third" "$T/mnt" --no-hydrate --read-only
unmount "$T/mnt"
if "$VMFERRY" mount -f "$SERVER_URL/third" "$T/mnt" "${common[@]}" \
	--passphrase-file "$T/pass" >"$T/logs/kind2.err" 2>&1; then
	fail "a key-file copy opened with a passphrase"
fi
grep -q "is protected by a key file, not a passphrase: use --key-file" "$T/logs/kind2.err" ||
	fail "kind2: $(cat "$T/logs/kind2.err")"

# Neither passphrase, nor the key, nor the token is in any log.
key=$(cat "$T/user.key")
token=$(cat "$ADMIN_TOKEN_FILE")
for s in "$PASS" "wrong horse" "new one" "$key" "$token"; do
	! grep -rqF -- "$s" "$T/logs" || fail "a secret is in a log: $(grep -rlF -- "$s" "$T/logs")"
done
exit 0
