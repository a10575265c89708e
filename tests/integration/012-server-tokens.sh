#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Tokens: add, list, revoke; read/write/'*'/admin grants; changes take
# effect in a running server at once; only hashes are stored.
source "$(dirname "$0")/../lib.sh"
requires curl python3

make_image "$T/data/img" 100000 9
start_server "$T/srv"
S=$SERVER_DIR
for n in alpha beta; do
	"$VMFERRY_SERVER" import "$S" $n "$T/data/img" >/dev/null 2>&1 || fail "import $n"
done

add() { "$VMFERRY_SERVER" token add "$S" "$@" 2>>"$T/logs/token.log"; }
status() { # status TOKEN PATH [curl args]: the HTTP status
	local tok=$1 path=$2
	shift 2
	curl -sS --cacert "$CACERT" -o /dev/null -w '%{http_code}' \
		-H "Authorization: Bearer $tok" "$@" "$SERVER_URL$path"
}
names() { # the images a token lists
	curl -sS --cacert "$CACERT" -H "Authorization: Bearer $1" "$SERVER_URL/v1/images" |
		python3 -c 'import json,sys; print(" ".join(i["name"] for i in json.load(sys.stdin)["images"]))'
}

R_ALPHA=$(add --name reader --read alpha)
W_BETA=$(add --name writer --write beta)
R_ALL=$(add --name all-reader --read '*')
ADM=$(add --name second-admin --admin)
[[ $R_ALPHA =~ ^vmf_[A-Za-z0-9_-]{43}$ ]] || fail "token format: $R_ALPHA"

# Grants.
[ "$(status "$R_ALPHA" /v1/images/alpha/versions/1/data)" = 200 ] || fail "read grant"
[ "$(status "$R_ALPHA" /v1/images/beta/versions/1/data)" = 403 ] || fail "read of another image"
[ "$(names "$R_ALPHA")" = alpha ] || fail "list for a reader: $(names "$R_ALPHA")"
[ "$(status "$W_BETA" /v1/images/beta)" = 200 ] || fail "write implies read"
[ "$(status "$W_BETA" /v1/images/alpha)" = 403 ] || fail "writer reads another image"
[ "$(names "$W_BETA")" = beta ] || fail "list for a writer"
[ "$(names "$R_ALL")" = "alpha beta" ] || fail "list for '*'"
[ "$(status "$R_ALL" /v1/blocks/missing --data-binary '')" = 403 ] || fail "reader may not upload"
[ "$(status "$W_BETA" /v1/blocks/missing --data-binary '')" = 200 ] || fail "writer may upload"
[ "$(status "$W_BETA" /v1/stats)" = 403 ] || fail "writer reads stats"
[ "$(status "$ADM" /v1/stats)" = 200 ] || fail "admin reads stats"

# list shows ids, labels, grants; never a token or its hash.
"$VMFERRY_SERVER" token list "$S" >"$T/list" || fail "token list"
grep -q '^ID  *CREATED  *LABEL  *GRANTS' "$T/list" || fail "list header: $(cat "$T/list")"
grep -Eq '^[0-9a-f]{12}  .*reader  *read=alpha$' "$T/list" || fail "reader row: $(cat "$T/list")"
grep -q 'writer  *write=beta$' "$T/list" || fail "writer row"
grep -q 'all-reader  *read=\*$' "$T/list" || fail "'*' row"
grep -q 'second-admin  *admin$' "$T/list" || fail "admin row"
[ "$(wc -l <"$T/list")" = 6 ] || fail "list has $(wc -l <"$T/list") lines"
for t in "$R_ALPHA" "$W_BETA" "$R_ALL" "$ADM" "$(cat "$ADMIN_TOKEN_FILE")"; do
	! grep -qF "$t" "$T/list" "$S/tokens.json" || fail "a token is stored or listed"
	h=$(printf %s "$t" | sha256sum | cut -d' ' -f1)
	grep -q "$h" "$S/tokens.json" || fail "tokens.json lacks a token's hash"
	! grep -q "$h" "$T/list" || fail "list shows a hash"
done
[ "$(stat -c %a "$S/tokens.json")" = 600 ] || fail "tokens.json mode"
[ "$(stat -c %a "$S/admin.token")" = 600 ] || fail "admin.token mode"

# Revoke while serving: the next request already fails; others go on.
ID=$(awk '$3 == "reader" {print $1}' "$T/list")
"$VMFERRY_SERVER" token revoke "$S" "$ID" >/dev/null || fail "revoke"
[ "$(status "$R_ALPHA" /v1/images/alpha)" = 401 ] || fail "revoked token still works"
[ "$(status "$R_ALL" /v1/images/alpha)" = 200 ] || fail "revoke hit another token"
! grep -q "$ID" <("$VMFERRY_SERVER" token list "$S") || fail "revoked token listed"
# ...and a token added while serving works at once.
NEW=$(add --name late --read alpha)
[ "$(status "$NEW" /v1/images/alpha)" = 200 ] || fail "a new token does not work yet"

# Usage errors exit 2, other errors 1, both with one line on stderr.
set +e
"$VMFERRY_SERVER" token add "$S" --name x 2>/dev/null; [ $? = 2 ] || fail "add without grants"
"$VMFERRY_SERVER" token add "$S" --read alpha 2>/dev/null; [ $? = 2 ] || fail "add without --name"
"$VMFERRY_SERVER" token add "$S" --name x --read ../x 2>/dev/null; [ $? = 2 ] || fail "bad grant"
"$VMFERRY_SERVER" token revoke "$S" 000000000000 2>"$T/err"; [ $? = 1 ] || fail "revoke unknown"
[ "$(wc -l <"$T/err")" = 1 ] || fail "revoke error is not one line: $(cat "$T/err")"
"$VMFERRY_SERVER" token list "$T/nowhere" 2>/dev/null; [ $? = 1 ] || fail "list of no server"
"$VMFERRY_SERVER" token frob "$S" 2>/dev/null; [ $? = 2 ] || fail "unknown subcommand"
"$VMFERRY_SERVER" token --help | grep -q '^usage:' || fail "token --help"
set -e
# A clean stop: SIGINT gives exit 0 (under ASan: no error, no leak).
kill -INT "$SERVER_PID"
wait "$SERVER_PID" || fail "vmferry-server exited with status $? on SIGINT"
SERVER_PID=
echo ok
