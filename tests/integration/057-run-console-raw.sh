#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vmferry run NAME --remote` on a terminal (tests/ptyrun.py): the
# terminal is raw while attached, so keys reach the VM's serial input as
# typed, with no newline and Ctrl-C among them (the server runs
# tests/helpers/fake-qemu.py, which writes each byte of its serial input
# to its console as "<xx>"); Ctrl-] detaches, the VM goes on running,
# and the terminal's settings (`stty -g`) are what they were before.
# Running it again attaches to the running VM.  With stdin a pipe, input
# goes as read: Ctrl-] is a byte like another and SIGINT detaches.
source "$(dirname "$0")/../lib.sh"
helpers=$(cd "$(dirname "$0")/../helpers" && pwd)
run_setup
start_server "$T/srv" --qemu "$helpers/fake-qemu.py" --vm-grace 1
make_image "$T/data/img" $((2 * 1024 * 1024))
import_image vm1 "$T/data/img"
vmf=(env VMFERRY_SERVER="$SERVER_URL" "$VMFERRY" run vm1 --remote --cacert "$CACERT"
	--token-file "$ADMIN_TOKEN_FILE")
console=$SERVER_DIR/run/vm1/console.log
state() {
	scurl "$SERVER_URL/v1/images/vm1/vm" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'
}
# attach NAME KEYS...: run it in a pty, typing each "@TEXT:KEYS" once
# TEXT shows; it must end 0 with the terminal's settings (`stty -g`)
# as before and the VM still running.  Its transcript: $T/logs/NAME.txt.
attach() {
	local name=$1 st=0
	shift
	PTYRUN_TIMEOUT=60 python3 "$TOP/tests/ptyrun.py" "$T/logs/$name.txt" "$@" -- \
		sh -c 'stty -g >"$0.before"; "$@"; st=$?; stty -g >"$0.after"; exit $st' \
		"$T/$name" "${vmf[@]}" || st=$?
	cat "$T/logs/$name.txt"
	[ "$st" = 0 ] || fail "$name: run --remote on a terminal: status $st"
	cmp "$T/$name.before" "$T/$name.after" ||
		fail "$name: the terminal was not restored: $(cat "$T/$name.before") vs $(cat "$T/$name.after")"
	grep -q "attached to the console: keys go to the VM as typed" "$T/logs/$name.txt" ||
		fail "$name: no raw-mode line"
	grep -q "detached; the VM goes on running on the server" "$T/logs/$name.txt" ||
		fail "$name: no detach line"
	[ "$(state)" = running ] || fail "$name: the VM is not running after a detach: $(state)"
}

attach tty1 "@Ctrl-] detaches:ab^Cc" "@<63>:^]"
grep -q "<61><62><03><63>" "$console" || fail "the keys did not reach the VM as typed: $(cat "$console")"

# Again: it attaches to the running VM, showing its console again.
attach tty2 "@Ctrl-] detaches:xyz" "@<7a>:^]"
grep -q "already running on the server: its console follows (Ctrl-] detaches)" "$T/logs/tty2.txt" ||
	fail "not attached to the running VM"
grep -q "<78><79><7a>" "$console" || fail "the keys of the second attach did not arrive"
grep -q "<61><62><03><63>" "$T/logs/tty2.txt" || fail "the console was not shown again from its start"

# stdin a pipe: as before (no raw mode), Ctrl-] is data, SIGINT detaches.
mkfifo "$T/in"
"${vmf[@]}" <"$T/in" >"$T/logs/pipe.txt" 2>&1 &
pid=$!
exec 7>"$T/in"
printf 'p\035q\n' >&7
for ((i = 0; i < 100; i++)); do
	grep -q "<70><1d><71><0a>" "$console" && break
	sleep 0.1
done
grep -q "<70><1d><71><0a>" "$console" || fail "piped input did not arrive as read: $(cat "$console")"
kill -INT "$pid"
st=0
wait "$pid" || st=$?
exec 7>&-
cat "$T/logs/pipe.txt"
[ "$st" = 0 ] || fail "SIGINT with a pipe: status $st"
grep -q "Ctrl-C detaches" "$T/logs/pipe.txt" || fail "a pipe's run does not say Ctrl-C detaches"
grep -q "attached to the console" "$T/logs/pipe.txt" && fail "a pipe was put in raw mode"
[ "$(state)" = running ] || fail "the VM is not running after SIGINT"
scurl -X DELETE "$SERVER_URL/v1/images/vm1/vm" >/dev/null || fail "DELETE .../vm"
