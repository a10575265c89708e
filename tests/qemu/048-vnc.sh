#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The display of a VM the server runs, through the server's TLS endpoint
# only: QEMU's VNC is on a Unix socket in the VM's run directory (no TCP
# port of QEMU's listens), `vmferry vnc` offers it on a local socket,
# and a real RFB client (tests/helpers/rfb-check.py) does the handshake
# (RFB 3.8, security None, ClientInit/ServerInit with a sane size) and
# receives a whole framebuffer as raw rectangles: exactly width x height
# pixels.  The same over `--listen 127.0.0.1:0`.  Five viewers at once:
# the fifth is refused (at most four per VM).  Stopping the VM closes
# the tunnel; stopping the server with a viewer attached ends cleanly.
source "$(dirname "$0")/../lib.sh"
run_testvm_setup --vm-grace 2
# The test image's guest powers off once booted, in seconds: the display
# is checked on a blank disk instead, where QEMU's BIOS finds nothing to
# boot and shows so on its VGA, running until it is stopped.
mkdir -p "$T/data" && truncate -s 64M "$T/data/blank.img"
import_image blank "$T/data/blank.img"
printf '{"vm": {"memory": "128M", "cpus": 1}}\n' >"$SERVER_DIR/images/blank/policy.json"
vmf() {
	VMFERRY_SERVER=$SERVER_URL "$VMFERRY" "$@"
}
tls=(--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE")
rfb=$(dirname "$0")/../helpers/rfb-check.py

scurl -X POST "$SERVER_URL/v1/images/blank/vm" >/dev/null || fail "POST .../vm"
cleanup_fn "scurl -X DELETE $SERVER_URL/v1/images/blank/vm >/dev/null 2>&1 || true"

# The display over `vmferry vnc`'s Unix socket.
# Not through vmf(): $! must be vmferry itself, not a subshell that
# would leave it running when killed.
VMFERRY_SERVER=$SERVER_URL "$VMFERRY" vnc blank --socket "$T/vnc.sock" "${tls[@]}" \
	>"$T/logs/vnc.out" 2>"$T/logs/vnc.err" &
vnc_pid=$!
cleanup_fn "kill $vnc_pid 2>/dev/null || true"
wait_for_file "$T/logs/vnc.out" || fail "vmferry vnc did not start: $(cat "$T/logs/vnc.err")"
grep -q "^blank: display on unix:$T/vnc.sock$" "$T/logs/vnc.out" || fail "vnc: $(cat "$T/logs/vnc.out")"
# QEMU needs a moment before its display listens (503 until then).
ok=
for ((i = 0; i < 60; i++)); do
	if out=$(timeout 90 python3 "$rfb" "unix:$T/vnc.sock" 2>&1); then
		ok=1
		break
	fi
	sleep 1
done
echo "$out"
[ -n "$ok" ] || fail "no framebuffer through the tunnel: $out; $(tail -5 "$T/logs/vnc.err")"
echo "$out" | grep -Eq "^RFB OK (640x480|720x400|800x600|1024x768|1280x800) " || fail "rfb: $out"

# No TCP port for VNC: QEMU listens on Unix sockets only.
qpid=$(pgrep -f "qemu-system.*$SERVER_DIR/run/blank/disk.img")
[ -n "$qpid" ] || fail "no QEMU"
tr '\0' ' ' </proc/"$qpid"/cmdline | grep -q -- "-vnc unix:$SERVER_DIR/run/blank/vnc.sock" ||
	fail "QEMU's VNC is not on its Unix socket: $(tr '\0' ' ' </proc/"$qpid"/cmdline)"
ports=$(ss -ltnpH | grep "pid=$qpid," || true)
[ -z "$ports" ] || fail "QEMU listens on TCP: $ports"
echo "QEMU $qpid: no TCP listening socket"

# --listen on a loopback port, one viewer.
vmf vnc blank --listen 127.0.0.1:0 --once "${tls[@]}" >"$T/logs/vnc2.out" 2>"$T/logs/vnc2.err" &
vnc2_pid=$!
wait_for_file "$T/logs/vnc2.out" || fail "vmferry vnc --listen did not start"
port=$(sed -n 's/^blank: display on 127.0.0.1:\([0-9]*\)$/\1/p' "$T/logs/vnc2.out")
[ -n "$port" ] || fail "vnc --listen: $(cat "$T/logs/vnc2.out")"
out=$(timeout 90 python3 "$rfb" "127.0.0.1:$port") || fail "rfb over --listen: $out"
echo "$out"
wait "$vnc2_pid" || fail "vnc --once did not exit 0: $(cat "$T/logs/vnc2.err")"
st=0
out=$(vmf vnc blank --listen 0.0.0.0:5999 "${tls[@]}" 2>&1) || st=$?
[ "$st" = 1 ] && echo "$out" | grep -q "loopback only" || fail "--listen 0.0.0.0: $st $out"

# At most four viewers of a VM: hold four, the fifth is refused.
python3 - "$T/vnc.sock" <<'PY' || fail "viewer limit"
import socket, sys, time
held = []
for i in range(4):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(30)
    if s.recv(12) != b"RFB 003.008\n":
        sys.exit("viewer %d got no RFB greeting" % i)
    held.append(s)
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(30)
if s.recv(12) != b"":
    sys.exit("a fifth viewer was let in")
print("four viewers held, the fifth refused")
PY
grep -q "too many VNC viewers of blank (at most 4)" "$T/logs/vnc.err" || fail "no limit message: $(tail -3 "$T/logs/vnc.err")"

# attach_viewer OUT: a viewer in the background (pid in $held_pid) that
# waits for the next run's display, says "attached" in OUT, then reads
# until its connection ends ("closed").
attach_viewer() {
	python3 - "$T/vnc.sock" >"$1" 2>&1 <<'PY' &
import socket, sys, time
for i in range(120):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(300)
    if s.recv(12) == b"RFB 003.008\n":
        break
    time.sleep(1)
else:
    sys.exit("no display")
print("attached", flush=True)
while s.recv(4096):
    pass
print("closed")
PY
	held_pid=$!
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q attached "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "no viewer attached: $(cat "$1")"
}

# A viewer attached while the VM is stopped: the tunnel ends with it.
scurl -X POST "$SERVER_URL/v1/images/blank/vm" >/dev/null || fail "POST .../vm again"
attach_viewer "$T/logs/held.out"
out=$(vmf stop blank "${tls[@]}") || fail "stop: $out"
echo "$out"
# Nothing wrote its disk: no new version (the BIOS only read it).
echo "$out" | grep -q "stopped: blank is version 1 (unchanged: no new version)" || fail "stop: $out"
wait "$held_pid" || fail "the held viewer: $(cat "$T/logs/held.out")"
grep -q closed "$T/logs/held.out" || fail "the viewer's connection did not end with the VM"

# A viewer attached while the server stops (SIGTERM): it ends cleanly
# (stop_server fails the test on a non-zero exit, e.g. a sanitizer's).
scurl -X POST "$SERVER_URL/v1/images/blank/vm" >/dev/null || fail "POST .../vm a third time"
attach_viewer "$T/logs/held2.out"
stop_server || fail "the server did not stop cleanly with a viewer attached"
wait "$held_pid" || fail "the viewer: $(cat "$T/logs/held2.out")"
grep -q closed "$T/logs/held2.out" || fail "the viewer's connection did not end with the server"
grep -q "VNC viewer's connection ended\|a VNC viewer left" "$T/logs/server.log" || true
