#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Leases, one writer per image: grant, renew, a second writer refused
# with the holder named; commits must present the live lease (or none
# may be held); `lease break` while serving; expiry; release; a lease
# survives a restart.  Refused commits leave the current version alone.
source "$(dirname "$0")/../lib.sh"
requires curl python3

make_image "$T/data/img" 300000 14
start_server "$T/srv"
import_image demo "$T/data/img"
U=$SERVER_URL/v1/images/demo
scurl -f -o "$T/m" "$U/versions/1/manifest" || fail "manifest"

# req METHOD URL [curl args]: sets CODE; the body is in $T/body.
req() {
	local m=$1 url=$2
	shift 2
	CODE=$(scurl -X "$m" -o "$T/body" -w '%{http_code}' "$@" "$url")
}
# j EXPR: a Python expression over the JSON body d.
j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/body" "$1"; }
lease() { # lease HOLDER [ID]
	local id=${2:+, \"lease_id\": \"$2\"}
	req POST "$U/lease" --data-binary "{\"holder\": \"$1\", \"where\": \"local\"$id}"
}
commit() { # commit ID [LEASE-ID]
	req POST "$U/versions" --data-binary @"$T/m" -H "Vmferry-Commit-Id: $1" \
		-H "Vmferry-Base-Version: $(current)" ${2:+-H "Vmferry-Lease-Id: $2"}
}
current() { scurl "$U" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
expect() { # expect CODE WHAT
	[ "$CODE" = "$1" ] || fail "$2: HTTP $CODE, want $1: $(cat "$T/body")"
	if [ "$1" -ge 400 ]; then
		[ "$(j 'd["status"]')" = "$1" ] || fail "$2: not a JSON error"
	fi
}

# Grant, shown in the metadata without its id; renew keeps the id.
lease alice@laptop
expect 200 "grant"
A=$(j 'd["lease_id"]')
[[ $A =~ ^[0-9a-f]{32}$ ]] || fail "lease id $A"
[ "$(j 'd["holder"], d["where"], d["expires"] - d["since"], d["renewed"]')" = \
	"('alice@laptop', 'local', 14400, False)" ] || fail "grant: $(cat "$T/body")"
req GET "$U"
[ "$(j 'd["lease"]["holder"], "lease_id" in d["lease"]')" = "('alice@laptop', False)" ] ||
	fail "metadata: $(cat "$T/body")"
lease alice@laptop "$A"
expect 200 "renew"
[ "$(j 'd["lease_id"], d["renewed"]')" = "('$A', True)" ] || fail "renew: $(cat "$T/body")"

# A second writer is refused, with the holder named.
lease bob@desk
expect 409 "second lease"
j 'd["error"]' | grep -q "leased to alice@laptop (local) since" || fail "409: $(cat "$T/body")"
[ "$(j 'd["holder"], d["where"]')" = "('alice@laptop', 'local')" ] || fail "409 fields"
lease bob@desk 0123456789abcdef0123456789abcdef
expect 409 "lease with a wrong id"

# Commits: with the lease, yes; with a wrong id or none, 409.
commit lease-commit-0000000001 "$A"
expect 201 "commit with the lease"
[ "$(current)" = 2 ] || fail "version after commit"
commit lease-commit-0000000002 0123456789abcdef0123456789abcdef
expect 409 "commit with a wrong lease"
[ "$(j 'd["error"], d["reason"], d["holder"]')" = \
	"('lease broken or expired', 'lease', 'alice@laptop')" ] || fail "wrong lease: $(cat "$T/body")"
commit lease-commit-0000000003
expect 409 "commit without the lease"
j 'd["error"]' | grep -q "alice@laptop" || fail "no holder named: $(cat "$T/body")"
commit lease-commit-0000000004 not-hex
expect 400 "commit with a malformed lease id"
[ "$(current)" = 2 ] || fail "a refused commit changed the version"

# The lease survives a restart.
stop_server
start_server "$T/srv"
U=$SERVER_URL/v1/images/demo
commit lease-commit-0000000005 "$A"
expect 201 "commit with the lease after a restart"
"$VMFERRY_SERVER" lease list "$SERVER_DIR" >"$T/list" || fail "lease list"
grep -q "^demo  *alice@laptop  *local " "$T/list" || fail "lease list: $(cat "$T/list")"

# Broken while serving: the holder's next commit is a conflict.
"$VMFERRY_SERVER" lease break "$SERVER_DIR" demo >"$T/break" || fail "lease break"
grep -q "held by alice@laptop" "$T/break" || fail "break: $(cat "$T/break")"
commit lease-commit-0000000006 "$A"
expect 409 "commit with a broken lease"
[ "$(j 'd["error"], "holder" in d')" = "('lease broken or expired', False)" ] || fail "broken: $(cat "$T/body")"
[ "$(current)" = 3 ] || fail "a broken lease committed"
"$VMFERRY_SERVER" lease break "$SERVER_DIR" demo 2>/dev/null && fail "second break succeeded"
req GET "$U"
[ "$(j 'd["lease"]')" = None ] || fail "lease after break: $(cat "$T/body")"

# Another takes it; release with a wrong id 409, the right one 200.
lease bob@desk
expect 200 "lease after break"
B=$(j 'd["lease_id"]')
[ "$B" != "$A" ] || fail "same id after break"
req DELETE "$U/lease" -H "Vmferry-Lease-Id: $A"
expect 409 "release with a wrong id"
req DELETE "$U/lease"
expect 400 "release without an id"
req DELETE "$U/lease" -H "Vmferry-Lease-Id: $B"
expect 200 "release"
[ "$(j 'd["released"]')" = True ] || fail "release: $(cat "$T/body")"
req DELETE "$U/lease" -H "Vmferry-Lease-Id: $B"
expect 200 "release again"
[ "$(j 'd["released"]')" = False ] || fail "second release: $(cat "$T/body")"
commit lease-commit-0000000007
expect 201 "commit with no lease held"

# Expiry (a 2 s lease): another may take it, the old id is dead.
stop_server
start_server "$T/srv" --lease-seconds 2
U=$SERVER_URL/v1/images/demo
lease alice@laptop
expect 200 "short lease"
A=$(j 'd["lease_id"]')
[ "$(j 'd["expires"] - d["since"]')" = 2 ] || fail "lease seconds: $(cat "$T/body")"
lease bob@desk
expect 409 "short lease held"
sleep 3
req GET "$U"
[ "$(j 'd["lease"]')" = None ] || fail "expired lease shown: $(cat "$T/body")"
lease bob@desk
expect 200 "lease after expiry"
B=$(j 'd["lease_id"]')
[ "$(j 'd["holder"]')" = bob@desk ] || fail "expired: $(cat "$T/body")"
commit lease-commit-0000000008 "$A"
expect 409 "commit with an expired lease"
[ "$(current)" = 4 ] || fail "an expired lease committed"
req DELETE "$U/lease" -H "Vmferry-Lease-Id: $B"
expect 200 "final release"
# Bad requests.
req POST "$U/lease" --data-binary '{"holder": "x", "where": "moon"}'
expect 400 "bad where"
req POST "$U/lease" --data-binary 'not json'
expect 400 "not JSON"
req POST "$SERVER_URL/v1/images/nosuch/lease" --data-binary '{"holder": "x", "where": "local"}'
expect 404 "lease on no image"
req PUT "$U/lease"
expect 405 "PUT lease"
echo ok
