#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tickets for the VNC WebSocket (a browser cannot send a header on one):
# POST .../vnc/ticket with the token and the run grant, while the VM
# runs, gives {"ticket": 32 hex digits, "expires_in": --vnc-ticket-time};
# GET .../vnc?ticket=T with no Authorization header then relays (the
# fake QEMU's echo) once.  401 for no ticket, a malformed or unknown
# one, a used one, an expired one, one for another image (used up too)
# and a ticket on any other route; 403/404/409 for the ticket itself
# without the grant, never run, not running.  No ticket is in the
# server's log (--verbose: one line per request).
source "$(dirname "$0")/../lib.sh"
helpers=$(cd "$(dirname "$0")/../helpers" && pwd)
start_server "$T/srv" --qemu "$helpers/fake-qemu.py" --vm-grace 1 --vnc-ticket-time 2 --verbose
make_image "$T/data/img" $((2 * 1024 * 1024))
import_image vm1 "$T/data/img"
import_image vm2 "$T/data/img"
"$VMFERRY_SERVER" token add "$SERVER_DIR" --name reader --read vm1 >"$T/reader.token" 2>/dev/null
base=$SERVER_URL/v1/images
ws=("${WS_UPGRADE[@]}")
# ticket: a new ticket for vm1 (checked), on stdout.
tickets=()
ticket() {
	local out
	out=$(scurl -X POST "$base/vm1/vnc/ticket") || fail "POST .../vnc/ticket: $out"
	echo "$out" | python3 -c 'import json,re,sys; t=json.load(sys.stdin); assert re.fullmatch("[0-9a-f]{32}", t["ticket"]) and t["expires_in"] == 2, t; print(t["ticket"])' ||
		fail "not a ticket: $out"
}
probe() {
	timeout 60 python3 "$helpers/ws-probe.py" "$1" "$CACERT" - echo
}

expect_answer 401 "missing bearer token" -X POST "$base/vm1/vnc/ticket"
expect_answer 403 "may not run image vm1" -X POST -H "Authorization: Bearer $(cat "$T/reader.token")" \
	"$base/vm1/vnc/ticket"
expect_answer 404 "image vm1 has not run on this server" -X POST \
	-H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")" "$base/vm1/vnc/ticket"
expect_answer 405 "not allowed" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")" "$base/vm1/vnc/ticket"

scurl -X POST "$base/vm1/vm" >/dev/null || fail "POST .../vm"
cleanup_fn "scurl -X DELETE $base/vm1/vm >/dev/null 2>&1 || true"
for ((i = 0; i < 100; i++)); do
	scurl "$base/vm1/vm" | grep -q '"state":"running"' && break
	sleep 0.1
done
# QEMU's display takes a moment (503 until then): the first ticket
# that relays is the check; each try uses up its ticket.
ok=
for ((i = 0; i < 50; i++)); do
	t=$(ticket)
	tickets+=("$t")
	if out=$(probe "$base/vm1/vnc?ticket=$t") && echo "$out" | grep -q "^ECHO OK$"; then
		ok=1
		break
	fi
	sleep 0.2
done
[ -n "$ok" ] || fail "a ticket did not open the display: $out"
echo "a ticket: $out"
expect_answer 401 "invalid, expired or used ticket" "${ws[@]}" "$base/vm1/vnc?ticket=$t"
expect_answer 401 "missing bearer token" "${ws[@]}" "$base/vm1/vnc"
expect_answer 401 "invalid, expired or used ticket" "${ws[@]}" "$base/vm1/vnc?ticket=00112233445566778899aabbccddeeff"
expect_answer 401 "invalid, expired or used ticket" "${ws[@]}" "$base/vm1/vnc?ticket=not-hex"
t=$(ticket)
tickets+=("$t")
expect_answer 401 "invalid, expired or used ticket" "${ws[@]}" "$base/vm2/vnc?ticket=$t"
expect_answer 401 "invalid, expired or used ticket" "${ws[@]}" "$base/vm1/vnc?ticket=$t"
t=$(ticket)
tickets+=("$t")
expect_answer 401 "a ticket is only for GET /v1/images/NAME/vnc" "$base/vm1/vm?ticket=$t"
t=$(ticket)
tickets+=("$t")
sleep 2.5
expect_answer 401 "invalid, expired or used ticket" "${ws[@]}" "$base/vm1/vnc?ticket=$t"

scurl -X DELETE "$base/vm1/vm" >/dev/null || fail "DELETE .../vm"
for ((i = 0; i < 100; i++)); do
	scurl "$base/vm1/vm" | grep -q '"state":"stopped"' && break
	sleep 0.1
done
expect_answer 409 "image vm1 is not running on the server" -X POST \
	-H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")" "$base/vm1/vnc/ticket"
grep -q "GET /v1/images/vm1/vnc 101" "$T/logs/server.log" || fail "no access line for the upgrade"
for t in "${tickets[@]}"; do
	! grep -q "$t" "$T/logs/server.log" "$SERVER_DIR/audit.log" || fail "ticket $t is in the server's log"
done
echo "${#tickets[@]} tickets, none in the server's log or audit log"
