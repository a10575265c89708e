#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The audit log: every block upload, commit, lease and pin change over
# the API, and token add/revoke, lease break, import and gc from the
# command line, is one JSON line in DIR/audit.log (mode 0600) with the
# time, token id (never the token), address, action, image, version and
# result.  Refused writes are recorded too.
source "$(dirname "$0")/../lib.sh"
requires curl python3

make_image "$T/data/img" 150000 6
start_server "$T/srv"
S=$SERVER_DIR
import_image demo "$T/data/img"
U=$SERVER_URL/v1
ADM=$(cat "$ADMIN_TOKEN_FILE")
ADMIN_ID=$("$VMFERRY_SERVER" token list "$S" | awk '$3 == "admin" {print $1}')
W=$("$VMFERRY_SERVER" token add "$S" --name writer --write demo 2>/dev/null)
W_ID=$("$VMFERRY_SERVER" token list "$S" | awk '$3 == "writer" {print $1}')
R=$("$VMFERRY_SERVER" token add "$S" --name reader --read demo 2>/dev/null)
c() { curl -sS --cacert "$CACERT" -o "$T/body" -w '%{http_code}' "$@"; }
jq_() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/body" "$1"; }

# A block, a commit, a lease grant/renew/release, a pin and its release.
printf 'audit block' >"$T/blk"
H=$(sha256sum <"$T/blk" | cut -d' ' -f1)
[ "$(c -H "Authorization: Bearer $W" -X PUT --data-binary @"$T/blk" "$U/blocks/$H")" = 201 ] || fail "PUT"
[ "$(c -H "Authorization: Bearer $W" -H 'Content-Type: application/json' \
	-d '{"holder":"alice@laptop","where":"local"}' "$U/images/demo/lease")" = 200 ] || fail lease
LID=$(jq_ lease_id)
[ "$(c -H "Authorization: Bearer $W" -d "{\"holder\":\"alice@laptop\",\"where\":\"local\",\"lease_id\":\"$LID\"}" \
	"$U/images/demo/lease")" = 200 ] || fail renew
scurl -o "$T/manifest" "$U/images/demo/versions/1/manifest"
[ "$(c -H "Authorization: Bearer $W" -H "Vmferry-Commit-Id: audit-test-commit-0001" \
	-H "Vmferry-Base-Version: 1" -H "Vmferry-Lease-Id: $LID" \
	--data-binary @"$T/manifest" "$U/images/demo/versions")" = 201 ] || fail "commit: $(cat "$T/body")"
[ "$(c -H "Authorization: Bearer $W" -X DELETE -H "Vmferry-Lease-Id: $LID" "$U/images/demo/lease")" = 200 ] || fail release
[ "$(c -H "Authorization: Bearer $R" -d '{"holder":"bob@desk","version":2}' "$U/images/demo/pins")" = 200 ] || fail pin
PID_=$(jq_ pin_id)
[ "$(c -H "Authorization: Bearer $R" -X DELETE -H "Vmferry-Pin-Id: $PID_" "$U/images/demo/pins")" = 200 ] || fail unpin
# Refused: a reader's upload (403), a stale commit (409).
[ "$(c -H "Authorization: Bearer $R" -X PUT --data-binary @"$T/blk" "$U/blocks/$H")" = 403 ] || fail "reader PUT"
[ "$(c -H "Authorization: Bearer $ADM" -H "Vmferry-Commit-Id: audit-test-commit-0002" \
	-H "Vmferry-Base-Version: 1" --data-binary @"$T/manifest" "$U/images/demo/versions")" = 409 ] || fail stale
# Reads are not audited.
scurl -o /dev/null "$U/images/demo/versions/2/data"
# The command line: lease break, token revoke, gc.
[ "$(c -H "Authorization: Bearer $W" -d '{"holder":"carol@x","where":"remote"}' "$U/images/demo/lease")" = 200 ] || fail lease2
"$VMFERRY_SERVER" lease break "$S" demo >/dev/null || fail "lease break"
"$VMFERRY_SERVER" token revoke "$S" "$W_ID" >/dev/null || fail revoke
"$VMFERRY_SERVER" gc "$S" --grace 0 >/dev/null || fail gc

L=$S/audit.log
[ "$(stat -c %a "$L")" = 600 ] || fail "audit.log mode $(stat -c %a "$L")"
python3 - "$L" "$ADMIN_ID" "$W_ID" "$H" <<'PY' || fail "audit records: $(cat "$L")"
import json, sys
path, admin_id, w_id, h = sys.argv[1:]
recs = [json.loads(line) for line in open(path)]
for r in recs:
    assert r["time"].endswith("Z") and r["result"] in ("ok", "refused"), r
def one(**want):
    got = [r for r in recs if all(r.get(k) == v for k, v in want.items())]
    assert len(got) == 1, (want, got)
    return got[0]
one(action="import", source="cli", image="demo", version=1, uid=0)
one(action="token.add", source="cli", token=w_id, label="writer")
b = one(action="block.put", token=w_id, status=201, hash=h, addr="127.0.0.1")
one(action="lease.grant", token=w_id, image="demo", holder="alice@laptop", where="local", status=200)
one(action="lease.renew", token=w_id, image="demo", status=200)
one(action="commit", token=w_id, image="demo", version=2, status=201, result="ok")
one(action="lease.release", token=w_id, image="demo", released=True)
one(action="pin.grant", image="demo", version=2, holder="bob@desk")
one(action="pin.release", image="demo", released=True)
one(action="block.put", status=403, result="refused")
one(action="commit", token=admin_id, status=409, result="refused")
one(action="lease.break", source="cli", image="demo", holder="carol@x")
one(action="token.revoke", source="cli", token=w_id)
one(action="gc", source="cli")
assert not [r for r in recs if r["action"].startswith("read")]
order = [r["action"] for r in recs]
assert order.index("lease.grant") < order.index("commit") < order.index("lease.release")
PY
# Never a token in the log.
for t in "$ADM" "$W" "$R"; do
	! grep -qF "$t" "$L" || fail "a token is in the audit log"
done
echo ok
