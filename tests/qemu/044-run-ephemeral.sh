#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmferry run --local --ephemeral on a terminal (a pty), stopped with
# Ctrl-C while the guest runs: the terminal's SIGINT reaches run (QEMU
# has it blocked), which presses the guest's power button, quits QEMU
# after --shutdown-timeout, syncs, releases the lease, unmounts and
# destroys the copy, and gives the terminal back with its echo.
# Nothing is left behind: no copy, no mount, no QEMU, no file in the
# runtime directory, no lease.
source "$(dirname "$0")/../lib.sh"
run_testvm_setup

# On a terminal, as a user: Ctrl-C once the guest has started.
run_args testvm --ephemeral --shutdown-timeout 2
st=0
PTYRUN_TIMEOUT=$VMFERRY_BOOT_TIMEOUT python3 "$TOP/tests/ptyrun.py" "$T/logs/terminal.log" \
	@VMFERRY-BOOT-START:^C -- "$VMFERRY" "${RUN_ARGS[@]}" || st=$?
cat "$T/logs/terminal.log"
[ "$st" = 0 ] || fail "run exited with status $st after Ctrl-C"
grep -q VMFERRY-BOOT-START "$T/logs/terminal.log" || fail "the guest did not start"
grep -q "signal 2: powering the guest off" "$T/logs/terminal.log" || fail "Ctrl-C did not power the guest off"
grep -q "the guest stopped" "$T/logs/terminal.log" || fail "the guest did not stop"
grep -q "^\[ptyrun: echo on\]" "$T/logs/terminal.log" || fail "the terminal was left without echo"
! grep -q VMFERRY-BOOT-OK "$T/logs/terminal.log" || echo "note: the guest finished before Ctrl-C"

[ "$(image_field testvm lease)" = None ] || fail "the lease was not released"
[ -z "$(find "$T/cache" -mindepth 1 -type f 2>/dev/null)" ] ||
	fail "the ephemeral copy left files: $(find "$T/cache" -type f)"
"$VMFERRY" list --cache "$T/cache" | grep -q "no local copies" || fail "a copy is listed"
[ -z "$(find "$T/run/vmferry" -mindepth 1 ! -name '*.sock')" ] ||
	fail "files left in the runtime directory: $(ls -A "$T/run/vmferry")"
! grep -q "$T/run" /proc/mounts || fail "still mounted"
! pgrep -f "qemu-system.*$T/run" >/dev/null || fail "QEMU is still running"
