#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One place at a time: `vmferry list --remote` shows each image's state
# from its lease (idle, running locally with holder and time, running on
# the server), and a local run is refused while the image runs on the
# server, with the server's lease-conflict sentence.  (The reverse, a
# server run refused while it runs locally: tests/qemu/045-run-remote.sh.)
source "$(dirname "$0")/../lib.sh"
requires_fuse
run_setup
start_server "$T/srv"
make_image "$T/data/img" $((2 * 1024 * 1024))
import_image vm1 "$T/data/img"
import_image vm2 "$T/data/img"
# vmf ARGS: vmferry with $VMFERRY_SERVER naming the test server (lib.sh's
# $VMFERRY_SERVER is the server's binary: set it for vmferry alone).
vmf() {
	VMFERRY_SERVER=$SERVER_URL "$VMFERRY" "$@"
}
tls=(--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE")

# state NAME: the state column of NAME in `list --remote --json`.
state() {
	vmf list --remote --json "${tls[@]}" |
		python3 -c 'import json,sys; print([i["state"] for i in json.load(sys.stdin)["images"] if i["name"] == sys.argv[1]][0])' "$1"
}

out=$(vmf list --remote "${tls[@]}") || fail "list --remote failed: $out"
echo "$out"
echo "$out" | grep -q "^vm1 .* idle$" || fail "vm1 is not idle"
[ "$(state vm1)" = idle ] || fail "vm1 is not idle (json)"

# A read-write mount holds the lease: running locally.
mount_image "$SERVER_URL/vm1" "$T/mnt"
out=$(vmf list --remote "${tls[@]}")
echo "$out"
holder=$(whoami)@$(hostname)
echo "$out" | grep -q "^vm1 .* running locally ($holder, since 20[0-9-]*T[0-9:]*Z)$" ||
	fail "vm1 does not show as running locally by $holder"
echo "$out" | grep -q "^vm2 .* idle$" || fail "vm2 is not idle"
[ "$(state vm1)" = local ] || fail "vm1 is not local (json)"
unmount "$T/mnt"
[ "$(state vm1)" = idle ] || fail "vm1 is not idle after unmount"

# The server holds vm2's lease ("remote"), as a server run does.
lease=$(scurl -X POST -H 'Content-Type: application/json' \
	-d '{"holder": "vmferry-server", "where": "remote"}' "$SERVER_URL/v1/images/vm2/lease")
id=$(echo "$lease" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lease_id"])')
out=$(vmf list --remote "${tls[@]}")
echo "$out"
echo "$out" | grep -q "^vm2 .* running on the server (started by vmferry-server, since " ||
	fail "vm2 does not show as running on the server"
[ "$(state vm2)" = remote ] || fail "vm2 is not remote (json)"
st=0
err=$(vmf run vm2 --local --qemu /bin/true "${tls[@]}" --cache "$T/cache" \
	--key-file "$T/user.key" 2>&1 </dev/null) || st=$?
echo "run --local: $err"
[ "$st" = 1 ] || fail "a local run of an image running on the server: status $st"
echo "$err" | grep -q "cannot run it locally: image vm2 is leased to vmferry-server (remote) since .* until .*: it runs on the server; stop it with \`vmferry stop" ||
	fail "not the lease-conflict message: $err"
[ -z "$(find "$T/run" -name 'run-*')" ] || fail "the refused run left a mountpoint"
[ "$(state vm2)" = remote ] || fail "the refused run changed vm2's lease"
scurl -X DELETE -H "Vmferry-Lease-Id: $id" "$SERVER_URL/v1/images/vm2/lease" >/dev/null
[ "$(state vm2)" = idle ] || fail "vm2 is not idle once released"

# Another client runs it locally: refused too, with the same sentence.
lease=$(scurl -X POST -H 'Content-Type: application/json' \
	-d '{"holder": "bob@laptop", "where": "local"}' "$SERVER_URL/v1/images/vm2/lease")
id=$(echo "$lease" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lease_id"])')
st=0
err=$(vmf run vm2 --local --qemu /bin/true "${tls[@]}" --cache "$T/cache" \
	--key-file "$T/user.key" 2>&1 </dev/null) || st=$?
echo "run --local: $err"
[ "$st" = 1 ] && echo "$err" | grep -q "cannot run it locally: image vm2 is leased to bob@laptop (local) since .* until .*: it runs on another machine" ||
	fail "a local run of an image another client runs: $st $err"
out=$(vmf list --remote "${tls[@]}")
echo "$out" | grep -q "^vm2 .* running locally (bob@laptop, since " || fail "vm2 is not shown running on bob's laptop"
scurl -X DELETE -H "Vmferry-Lease-Id: $id" "$SERVER_URL/v1/images/vm2/lease" >/dev/null

# No server to ask.
st=0
err=$(env -u VMFERRY_SERVER "$VMFERRY" list --remote "${tls[@]}" 2>&1) || st=$?
[ "$st" = 2 ] && echo "$err" | grep -q "which server" || fail "list --remote without a server: $st $err"
