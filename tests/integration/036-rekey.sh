#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vmferry rekey` re-wraps a copy's data key under a new key file or
# passphrase: only data.key changes (data.mdb and every other file stay
# byte for byte), the old key no longer opens the copy, the new one reads
# the cached data with the server gone.  Refused while mounted, and with
# a wrong old key, changing nothing.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 36
import_image disk "$T/data/img.raw"
PTY=(python3 "$TOP/tests/ptyrun.py")
P1="first rekey passphrase"
P2="second rekey passphrase"
printf '%s\n' "$P1" >"$T/p1"
printf '%s\n' "$P2" >"$T/p2"
chmod 600 "$T/p1" "$T/p2"
rekey() {
	"$VMFERRY" rekey --cache "$T/cache" "$@"
}

# A complete copy with a change, synced.
MOUNT_KEY=(--key-file "$T/k1")
mount_image "$SERVER_URL/disk" "$T/mnt" --sync-interval 0
wait_hydrated
printf 'rekeyed copy' | dd of="$T/mnt/disk.img" bs=1 seek=4096 conv=notrunc,fsync status=none
cp "$T/data/img.raw" "$T/data/want.raw"
printf 'rekeyed copy' | dd of="$T/data/want.raw" bs=1 seek=4096 conv=notrunc status=none
dir=$(ls -d "$T"/cache/*/disk)
if rekey --key-file "$T/k1" --new-key-file "$T/k2" "$SERVER_URL/disk" 2>"$T/logs/busy.err"; then
	fail "rekeyed a mounted copy"
fi
grep -q "the local copy in $dir is mounted: unmount it first" "$T/logs/busy.err" ||
	fail "busy: $(cat "$T/logs/busy.err")"
[ ! -e "$T/k2" ] || fail "a refused rekey created the new key file"
unmount "$T/mnt"

# Everything but data.key, byte for byte.
others() {
	(cd "$dir" && find . -type f ! -name data.key | sort | xargs sha256sum)
}
others >"$T/others"
cp "$dir/data.mdb" "$T/data.mdb.orig"
same_others() {
	others | cmp -s - "$T/others" || fail "$1 changed the copy's other files"
	cmp -s "$dir/data.mdb" "$T/data.mdb.orig" || fail "$1 changed data.mdb"
}
key_sum() { sha256sum <"$dir/data.key"; }

# key file -> a new key file (created 0600).
k0=$(key_sum)
rekey --key-file "$T/k1" --new-key-file "$T/k2" "$SERVER_URL/disk" >"$T/logs/r1.out" ||
	fail "rekey to k2"
grep -q "now protected by the new key file" "$T/logs/r1.out" || fail "r1: $(cat "$T/logs/r1.out")"
[ "$(stat -c %a "$T/k2")" = 600 ] || fail "k2 is not 0600"
[ "$(key_sum)" != "$k0" ] || fail "data.key did not change"
same_others "rekey to a key file"
# The old key file no longer opens it.
if "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" --key-file "$T/k1" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" 2>"$T/logs/old.err"; then
	fusermount3 -u "$T/mnt"
	fail "the old key file still opens the copy"
fi
grep -q "wrong key for the local copy in $dir" "$T/logs/old.err" || fail "old: $(cat "$T/logs/old.err")"
# A rekey with the wrong old key changes nothing.
k1=$(key_sum)
if rekey --key-file "$T/k1" --new-passphrase-file "$T/p1" "$SERVER_URL/disk" 2>"$T/logs/wrong.err"; then
	fail "rekeyed with the wrong old key"
fi
grep -q "wrong key for the local copy in $dir" "$T/logs/wrong.err" || fail "wrong: $(cat "$T/logs/wrong.err")"
[ "$(key_sum)" = "$k1" ] || fail "a refused rekey changed data.key"

# key file -> passphrase (file), naming the copy by its directory.
rekey --key-file "$T/k2" --new-passphrase-file "$T/p1" "$dir" >/dev/null || fail "rekey to p1"
same_others "rekey to a passphrase"
if rekey --key-file "$T/k2" --new-key-file "$T/k3" "$dir" 2>"$T/logs/kind.err"; then
	fail "the old key file still rekeys"
fi
grep -q "protected by a passphrase" "$T/logs/kind.err" || fail "kind: $(cat "$T/logs/kind.err")"

# passphrase -> passphrase on the terminal: the old one asked once, the
# new one twice, none echoed.
"${PTY[@]}" "$T/logs/tty.txt" "$P1" "$P2" "$P2" -- "$VMFERRY" rekey --cache "$T/cache" \
	--passphrase "$SERVER_URL/disk" || fail "tty rekey: $(cat "$T/logs/tty.txt")"
[ "$(grep -c "assphrase" "$T/logs/tty.txt")" -ge 3 ] || fail "prompts: $(cat "$T/logs/tty.txt")"
! grep -qF -e "$P1" -e "$P2" "$T/logs/tty.txt" || fail "a passphrase was echoed"
same_others "rekey on the terminal"
if rekey --passphrase-file "$T/p1" --new-key-file "$T/k3" "$dir" 2>"$T/logs/p1.err"; then
	fail "the old passphrase still opens the copy"
fi
grep -q "wrong passphrase for the local copy in $dir" "$T/logs/p1.err" || fail "p1: $(cat "$T/logs/p1.err")"

# Not a copy: said before anything is asked or written.
mkdir "$T/empty"
if rekey --passphrase "$T/empty" </dev/null 2>"$T/logs/empty.err"; then
	fail "rekeyed an empty directory"
fi
grep -q "no local copy in $T/empty" "$T/logs/empty.err" || fail "empty: $(cat "$T/logs/empty.err")"
[ -z "$(ls -A "$T/empty")" ] || fail "rekey wrote into a directory that is not a copy"

# The new passphrase reads the whole copy with the server gone.
MOUNT_KEY=(--passphrase-file "$T/p2")
mount_image "$SERVER_URL/disk" "$T/mnt" --read-only --no-hydrate --io-timeout 5
stop_server
cmp "$T/mnt/disk.img" "$T/data/want.raw" || fail "the rekeyed copy reads differently"
unmount "$T/mnt"
exit 0
