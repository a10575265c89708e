#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmferry run --local, end to end: it takes the lease, mounts, boots the
# test image (tests/qemu/mkimage.sh) in QEMU with its console on our
# stdout; the guest writes a random token to its disk and powers off;
# run syncs (version 2), releases the lease, unmounts and keeps the
# copy.  Version 2's changed blocks are read back from the server,
# checked against its manifest, and hold the token.  Then the kept copy
# runs again with the server stopped (offline): the guest reads the
# token back, and its new one goes up as version 3 once the server is
# back, at the next mount.
source "$(dirname "$0")/../lib.sh"
run_testvm_setup

run_local testvm --keep || fail "vmferry run failed: $(tail -n 5 "$T/logs/run.err")"
cat "$T/logs/run.err"
grep -q VMFERRY-BOOT-OK "$T/logs/console.log" || fail "no boot marker on the console"
token=$(sed -n 's/^VMFERRY-WROTE \([0-9a-f]\{32\}\)\r\?$/\1/p' "$T/logs/console.log")
[ -n "$token" ] || fail "the guest wrote no token"
grep -q "synced: version 2" "$T/logs/run.err" || fail "run did not sync as version 2"
grep -q "running with \(tcg\|kvm\), 256 MiB, 1 CPU" "$T/logs/run.err" ||
	fail "not the accelerator, or not the policy's memory and CPUs"
[ "$(image_field testvm version)" = 2 ] || fail "the server is not at version 2"
[ "$(image_field testvm lease)" = None ] || fail "the lease was not released"
version_holds testvm 2 "$token" || fail "version 2 does not hold the guest's token"
! mountpoint -q "$T/run/vmferry/run-testvm."* 2>/dev/null || fail "still mounted"
[ -z "$(find "$T/run/vmferry" -name 'run-*')" ] || fail "run left files in the runtime directory"
"$VMFERRY" list --cache "$T/cache" | grep -q "/testvm .* keep" || fail "the kept copy is not listed"

# Offline, from the kept copy.
stop_server
run_local testvm --memory 256M ||
	fail "offline run failed: $(tail -n 5 "$T/logs/run.err")"
cat "$T/logs/run.err"
grep -q "offline" "$T/logs/run.err" || fail "the run did not say it is offline"
grep -q "running with .*, 256 MiB" "$T/logs/run.err" || fail "--memory 256M was not used"
grep -q "VMFERRY-LAST $token" "$T/logs/console.log" || fail "offline guest did not read the token"
token2=$(sed -n 's/^VMFERRY-WROTE \([0-9a-f]\{32\}\)\r\?$/\1/p' "$T/logs/console.log")
[ -n "$token2" ] || fail "the offline guest wrote no token"
grep -q "sync failed.*offline" "$T/logs/run.err" || fail "an offline run did not keep its changes"

# The server is back: the next mount sends the offline changes.
port=$SERVER_PORT
start_server "$T/srv" --listen "127.0.0.1:$port"
mount_image "$SERVER_URL/testvm" "$T/mnt" --no-hydrate --sync-interval 0
out=$("$VMFERRY" sync "$T/mnt") || fail "sync failed: $out"
echo "$out" | grep -q "version 3" || fail "not version 3: $out"
unmount "$T/mnt"
version_holds testvm 3 "$token2" || fail "version 3 does not hold the offline guest's token"

# A token that may only read runs it too, on a read-only mount: the
# guest's writes go to a throw-away overlay, and nothing is committed.
"$VMFERRY_SERVER" token add "$SERVER_DIR" --name reader --read testvm >"$T/reader.token" 2>/dev/null
run_local testvm --token-file "$T/reader.token" --cache "$T/cache-ro" ||
	fail "read-only run failed: $(tail -n 5 "$T/logs/run.err")"
cat "$T/logs/run.err"
grep -q "mounted read-only .* dropped" "$T/logs/run.err" || fail "no word on the read-only mount"
grep -q "VMFERRY-LAST $token2" "$T/logs/console.log" || fail "the read-only guest did not see version 3"
grep -q VMFERRY-BOOT-OK "$T/logs/console.log" || fail "the read-only guest did not finish"
[ "$(image_field testvm version)" = 3 ] || fail "a read-only run made a version"
