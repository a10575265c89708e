#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmferry run --local --ephemeral, stopped with Ctrl-C (SIGINT) while
# the guest runs: run presses the guest's power button, quits QEMU after
# --shutdown-timeout, syncs, releases the lease, unmounts and destroys
# the copy.  Nothing is left behind: no copy, no mount, no QEMU, no file
# in the runtime directory, no lease.
source "$(dirname "$0")/../lib.sh"
run_testvm_setup

# Not a shell function: a background shell ignores SIGINT.
run_args testvm --ephemeral --shutdown-timeout 2
"$VMFERRY" "${RUN_ARGS[@]}" </dev/null >"$T/logs/console.log" 2>"$T/logs/run.err" &
run_pid=$!
cleanup_fn "kill $run_pid 2>/dev/null || true"
wait_boot_start "$T/logs/console.log" "$run_pid"
kill -INT "$run_pid"
st=0
wait "$run_pid" || st=$?
cat "$T/logs/run.err"
[ "$st" = 0 ] || fail "run exited with status $st after SIGINT"
grep -q "powering the guest off" "$T/logs/run.err" || fail "run did not power the guest off"
! grep -q VMFERRY-BOOT-OK "$T/logs/console.log" || echo "note: the guest finished before SIGINT"

[ "$(image_field testvm lease)" = None ] || fail "the lease was not released"
[ -z "$(find "$T/cache" -mindepth 1 -type f 2>/dev/null)" ] ||
	fail "the ephemeral copy left files: $(find "$T/cache" -type f)"
"$VMFERRY" list --cache "$T/cache" | grep -q "no local copies" || fail "a copy is listed"
[ -z "$(find "$T/run/vmferry" -mindepth 1 ! -name '*.sock')" ] ||
	fail "files left in the runtime directory: $(ls -A "$T/run/vmferry")"
! grep -q "$T/run" /proc/mounts || fail "still mounted"
! pgrep -f "qemu-system.*$T/run" >/dev/null || fail "QEMU is still running"
