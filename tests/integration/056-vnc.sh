#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GET /v1/images/NAME/vnc without a guest: the server runs
# tests/helpers/fake-qemu.py as its QEMU (QMP, and an echoing "VNC" on
# the Unix socket QEMU is given).  A WebSocket upgrade relays both ways
# (the greeting, a 70000-byte frame echoed, ping/pong, close); bad
# frames get a close frame with their code (the slots of closed
# viewers are free again: two echo runs before four are held) (1002 unmasked, 1003 text,
# 1009 too long); bad requests get their status: 401 no token, 403 no
# run grant, 404 never ran, 400 not an upgrade or a bad key, 426 another
# version, 405 POST, 503 a fifth viewer, 409 once the VM has stopped.
# The VM stops without writing its disk: no new version ("unchanged").
source "$(dirname "$0")/../lib.sh"
helpers=$(cd "$(dirname "$0")/../helpers" && pwd)
start_server "$T/srv" --qemu "$helpers/fake-qemu.py" --vm-grace 1
make_image "$T/data/img" $((2 * 1024 * 1024))
import_image vm1 "$T/data/img"
import_image vm2 "$T/data/img"
"$VMFERRY_SERVER" token add "$SERVER_DIR" --name reader --read vm1 >"$T/reader.token" 2>/dev/null
vnc=$SERVER_URL/v1/images/vm1/vnc
probe() {
	timeout 60 python3 "$helpers/ws-probe.py" "$vnc" "$CACERT" "$ADMIN_TOKEN_FILE" "$@"
}
ws=("${WS_UPGRADE[@]}")
auth=(-H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")")

expect_answer 401 "missing bearer token" "${ws[@]}" "$vnc"
expect_answer 403 "may not run image vm1" "${ws[@]}" -H "Authorization: Bearer $(cat "$T/reader.token")" "$vnc"
expect_answer 404 "image vm1 has not run on this server" "${ws[@]}" "${auth[@]}" "$vnc"
expect_answer 405 "not allowed" -X POST "${ws[@]}" "${auth[@]}" "$vnc"

scurl -X POST "$SERVER_URL/v1/images/vm1/vm" >/dev/null || fail "POST .../vm"
for ((i = 0; i < 100; i++)); do
	[ "$(scurl "$SERVER_URL/v1/images/vm1/vm" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = running ] && break
	sleep 0.1
done
expect_answer 400 "not a WebSocket upgrade" "${auth[@]}" "$vnc"
expect_answer 400 "not a WebSocket upgrade" "${auth[@]}" -H "Upgrade: websocket" -H "Connection: Upgrade" \
	-H "Sec-WebSocket-Version: 13" "$vnc"
expect_answer 400 "invalid Sec-WebSocket-Key" "${auth[@]}" -H "Upgrade: websocket" -H "Connection: Upgrade" \
	-H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: short" "$vnc"
expect_answer 426 "unsupported WebSocket version" "${auth[@]}" -H "Upgrade: websocket" -H "Connection: Upgrade" \
	-H "Sec-WebSocket-Version: 8" -H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "$vnc"
curl -sS --http1.1 -D - -o /dev/null --cacert "$CACERT" "${auth[@]}" -H "Upgrade: websocket" \
	-H "Connection: Upgrade" -H "Sec-WebSocket-Version: 8" \
	-H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" "$vnc" | grep -qi "^Sec-WebSocket-Version: 13" ||
	fail "a 426 without Sec-WebSocket-Version: 13"

# Relays, both ways.
for i in 1 2; do
	out=$(probe echo) || fail "echo: $out"
	echo "$out"
	echo "$out" | grep -q "^ECHO OK$" || fail "echo: $out"
done
out=$(probe unmasked) || fail "unmasked: $out"
[ "$out" = "CLOSE 1002" ] || fail "an unmasked client frame: $out"
out=$(probe text) || fail "text: $out"
[ "$out" = "CLOSE 1003" ] || fail "a text frame: $out"
out=$(probe big) || fail "big: $out"
[ "$out" = "CLOSE 1009" ] || fail "a 2^40-byte frame: $out"

# Four viewers at once, not five.
out=$(probe hold 5) || fail "hold: $out"
echo "$out"
[ "$(echo "$out" | grep -c "^HTTP/1.1 101")" = 4 ] && echo "$out" | tail -1 | grep -q "^HTTP/1.1 503" ||
	fail "not four viewers and a 503: $out"
# Stopped without a write: no new version, the state says so.
scurl -X DELETE "$SERVER_URL/v1/images/vm1/vm" >/dev/null || fail "DELETE .../vm"
for ((i = 0; i < 100; i++)); do
	st=$(scurl "$SERVER_URL/v1/images/vm1/vm")
	echo "$st" | grep -q '"state":"stopped"' && break
	sleep 0.1
done
echo "$st"
echo "$st" | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["state"] == "stopped" and s["version"] == 1 and s["unchanged"] is True, s' ||
	fail "not stopped as version 1, unchanged: $st"
out=$("$VMFERRY_SERVER" versions "$SERVER_DIR" vm1)
echo "$out"
[ "$(echo "$out" | grep -c '^[0-9]')" = 1 ] || fail "a stopped VM with no change made a version: $out"
[ "$(image_field vm1 lease)" = None ] || fail "the lease was kept"
grep -q "image vm1: the VM stopped; its disk is unchanged: no new version (still 1)" "$T/logs/server.log" ||
	fail "no log line for the unchanged disk"
expect_answer 409 "image vm1 is not running on the server" "${ws[@]}" "${auth[@]}" "$vnc"
expect_answer 404 "image vm2 has not run on this server" "${ws[@]}" "${auth[@]}" "$SERVER_URL/v1/images/vm2/vnc"
