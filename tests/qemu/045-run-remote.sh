#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmferry run --remote: the server runs the test image (tests/qemu/
# mkimage.sh) under its lease ("remote"); the serial console reaches our
# stdout over the same TLS endpoint; when the guest powers off, its disk
# is version 2 (its bytes checked, holding the token the guest printed).
# Then a second run is stopped with `vmferry stop` (version 3).  One
# place at a time, both ways: a remote run is refused while a local
# mount holds the lease, and a local run while the VM runs on the
# server.  A token without the run grant is refused.
source "$(dirname "$0")/../lib.sh"
run_testvm_setup --vm-grace 2
# vmf ARGS: vmferry with $VMFERRY_SERVER naming the test server (lib.sh's
# $VMFERRY_SERVER is the server's binary: set it for vmferry alone).
vmf() {
	VMFERRY_SERVER=$SERVER_URL "$VMFERRY" "$@"
}
tls=(--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE")

# Refused while it runs locally (a read-write mount holds the lease).
mount_image "$SERVER_URL/testvm" "$T/mnt" --no-hydrate
st=0
err=$(vmf run testvm --remote "${tls[@]}" 2>&1 </dev/null) || st=$?
echo "run --remote while mounted: $err"
[ "$st" = 1 ] || fail "a remote run of a locally leased image: status $st"
echo "$err" | grep -q "cannot run it on the server: image testvm is leased to .* (local) since .* until " ||
	fail "not the lease-conflict message: $err"
unmount "$T/mnt"

# No run grant.
"$VMFERRY_SERVER" token add "$SERVER_DIR" --name reader --read testvm >"$T/reader.token" 2>/dev/null
st=0
err=$(vmf run testvm --remote --cacert "$CACERT" --token-file "$T/reader.token" 2>&1 </dev/null) || st=$?
[ "$st" = 1 ] && echo "$err" | grep -q "needs the run grant" || fail "a reader ran it: $st $err"

# A whole run, to the guest's power-off.
VMFERRY_SERVER=$SERVER_URL timeout -k 60 "$VMFERRY_BOOT_TIMEOUT" "$VMFERRY" run testvm --remote "${tls[@]}" \
	</dev/null >"$T/logs/console.log" 2>"$T/logs/run.err" ||
	fail "run --remote failed: $(cat "$T/logs/run.err")"
cat "$T/logs/run.err"
grep -q VMFERRY-BOOT-OK "$T/logs/console.log" || fail "the marker did not reach our console"
token=$(sed -n 's/^VMFERRY-WROTE \([0-9a-f]\{32\}\)\r\?$/\1/p' "$T/logs/console.log")
[ -n "$token" ] || fail "the guest wrote no token"
grep -q "its disk is version 2" "$T/logs/run.err" || fail "no version 2"
[ "$(image_field testvm lease)" = None ] || fail "the server kept the lease"
version_holds testvm 2 "$token" || fail "version 2 does not hold the guest's token"
[ ! -e "$SERVER_DIR/run/testvm/disk.img" ] || fail "the server kept the VM's disk"

# Another run, stopped from elsewhere.
VMFERRY_SERVER=$SERVER_URL "$VMFERRY" run testvm --remote "${tls[@]}" </dev/null >"$T/logs/console2.log" 2>"$T/logs/run2.err" &
run_pid=$!
cleanup_fn "kill $run_pid 2>/dev/null || true"
wait_boot_start "$T/logs/console2.log" "$run_pid"
pgrep -af "qemu-system.*$SERVER_DIR/run/testvm/disk.img" | grep -q -- "-m 256 -smp 1" ||
	fail "the server's QEMU does not have the policy's memory and CPUs"
out=$(vmf list --remote "${tls[@]}")
echo "$out"
echo "$out" | grep -q "^testvm .* running on the server (started by admin@vmferry-server, since " ||
	fail "list --remote does not show it running on the server"
st=0
err=$(vmf run testvm --local --qemu /bin/true "${tls[@]}" --cache "$T/cache" \
	--key-file "$T/user.key" 2>&1 </dev/null) || st=$?
[ "$st" = 1 ] && echo "$err" | grep -q "cannot run it locally: image testvm is leased to admin@vmferry-server (remote)" ||
	fail "a local run while it runs on the server: $st $err"
# Stopped this early the guest may not have written yet, and an
# unchanged disk makes no version: change it for certain, in a corner
# the guest never touches, so the version to expect does not depend on
# the guest's timing.
mark_disk() { # mark_disk MARK: write MARK 1 MiB before the end of the VM's disk
	local disk=$SERVER_DIR/run/testvm/disk.img
	printf '%s' "$1" | dd of="$disk" bs=1 seek=$(($(stat -c %s "$disk") - 1048576)) \
		conv=notrunc status=none || fail "cannot mark the VM's disk"
}
mark2=VMFERRY-MARK-$(openssl rand -hex 8)
mark_disk "$mark2"
out=$(vmf stop testvm "${tls[@]}") || fail "stop failed: $out"
echo "$out"
echo "$out" | grep -q "stopped: testvm is version 3" || fail "stop: $out"
version_holds testvm 3 "$mark2" || fail "version 3 does not hold the disk's change"
st=0
wait "$run_pid" || st=$?
cat "$T/logs/run2.err"
[ "$st" = 0 ] || fail "the attached run exited with status $st"
grep -q "its disk is version 3" "$T/logs/run2.err" || fail "the attached run did not see version 3"
[ "$(image_field testvm lease)" = None ] || fail "the server kept the lease after stop"
st=0
err=$(vmf stop testvm "${tls[@]}" 2>&1) || st=$?
[ "$st" = 1 ] && echo "$err" | grep -q "not running on the server" || fail "stop of a stopped VM: $st $err"

# A server that stops quits its running VM and commits its disk first.
VMFERRY_SERVER=$SERVER_URL "$VMFERRY" run testvm --remote "${tls[@]}" </dev/null >"$T/logs/console3.log" 2>"$T/logs/run3.err" &
run_pid=$!
wait_boot_start "$T/logs/console3.log" "$run_pid"
mark3=VMFERRY-MARK-$(openssl rand -hex 8)
mark_disk "$mark3"
kill "$run_pid"
st=0
wait "$run_pid" || st=$?
grep -q "detached" "$T/logs/run3.err" && [ "$st" = 0 ] || fail "SIGTERM did not detach: $st $(cat "$T/logs/run3.err")"
stop_server
out=$("$VMFERRY_SERVER" versions "$SERVER_DIR" testvm)
echo "$out"
echo "$out" | grep -q "^4 .* admin " || fail "the server did not commit its VM's disk as it stopped"

# A server that crashes with a VM running leaves a "remote" lease under
# which nothing runs: the next server breaks it as it starts.
start_server "$T/srv" --vm-grace 1
version_holds testvm 4 "$mark3" || fail "version 4 does not hold the disk's change"
scurl -X POST "$SERVER_URL/v1/images/testvm/vm" >/dev/null
[ "$(image_field testvm lease)" != None ] || fail "no lease for the server's VM"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
# Its QEMU (ours too, started by the server we started) goes by its pid.
for ((i = 0; i < 100; i++)); do
	qpid=$(pgrep -f "qemu-system.*$SERVER_DIR/run/testvm/disk.img" || true)
	[ -n "$qpid" ] && break
	sleep 0.1
done
[ -z "$qpid" ] || kill $qpid
start_server "$T/srv"
grep -q "image testvm: broke the lease of a VM of a previous server process" "$T/logs/server.log" ||
	fail "the stale lease was not broken"
[ "$(image_field testvm lease)" = None ] || fail "testvm is still leased"
