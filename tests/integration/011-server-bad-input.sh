#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Bad input: each gets its 4xx with a JSON error body, and the server
# still answers a good request right after.
source "$(dirname "$0")/../lib.sh"
requires curl python3 sha256sum

make_image "$T/data/img" $((300000)) 5
start_server "$T/srv"
"$VMFERRY_SERVER" import "$SERVER_DIR" demo "$T/data/img" >/dev/null 2>&1 || fail import
U=$SERVER_URL/v1
V1=$U/images/demo/versions/1
WANT=$(sha256sum <"$T/data/img" | cut -d' ' -f1)

# expect STATUS WHAT CURL-ARGS...: the status, a JSON body that says the
# same status, and a healthy server afterwards.
expect() {
	local want=$1 what=$2 code
	shift 2
	code=$(curl -sS --path-as-is --cacert "$CACERT" -o "$T/body" -D "$T/hdr" \
		-w '%{http_code}' "$@") || fail "$what: curl failed"
	[ "$code" = "$want" ] || fail "$what: HTTP $code, want $want: $(cat "$T/body")"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
assert d["status"] == int(sys.argv[2]) and isinstance(d["error"], str) and d["error"]' \
		"$T/body" "$want" || fail "$what: body is not a JSON error: $(cat "$T/body")"
	alive
}
alive() {
	[ "$(scurl -r 1000-1999 "$V1/data" | sha256sum | cut -d' ' -f1)" = \
		"$(dd if="$T/data/img" bs=1000 skip=1 count=1 2>/dev/null | sha256sum | cut -d' ' -f1)" ] ||
		fail "server no longer answers a good request"
}
ADMIN=(-H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")")

# Range.
for r in "bytes=abc" "bytes=5-4" "bytes=--1" "bytes=1-2x" "items=0-1" "bytes 0-1" "bytes="; do
	expect 400 "Range '$r'" "${ADMIN[@]}" -H "Range: $r" "$V1/data"
done
expect 400 "multi-range" "${ADMIN[@]}" -H "Range: bytes=0-1,5-6" "$V1/data"
expect 400 "two Range headers" "${ADMIN[@]}" -H "Range: bytes=0-1" -H "Range: bytes=5-6" "$V1/data"
expect 416 "range past the end" "${ADMIN[@]}" -H "Range: bytes=300000-" "$V1/data"
expect 416 "range far past the end" "${ADMIN[@]}" -H "Range: bytes=999999999-1999999999" "$V1/manifest"
grep -qi '^content-range: bytes \*/' "$T/hdr" || fail "416 without Content-Range"

# Unknown things.
expect 404 "unknown image" "${ADMIN[@]}" "$U/images/nope"
expect 404 "unknown image data" "${ADMIN[@]}" "$U/images/nope/versions/1/data"
expect 404 "unknown version" "${ADMIN[@]}" "$U/images/demo/versions/2/data"
expect 404 "version 0" "${ADMIN[@]}" "$U/images/demo/versions/0/manifest"
expect 404 "unknown route" "${ADMIN[@]}" "$U/nothing"
expect 404 "other API version" "${ADMIN[@]}" "$SERVER_URL/v2/images"
expect 404 "a literal slash in a name" "${ADMIN[@]}" "$U/images/de/mo/versions/1/data"
expect 405 "wrong method" "${ADMIN[@]}" -X DELETE "$U/images/demo"
grep -qi '^allow: GET, HEAD' "$T/hdr" || fail "405 without Allow"
expect 405 "POST to data" "${ADMIN[@]}" -X POST --data-binary x "$V1/data"

# Names and versions that must never reach the file system.
for n in .. ..%2F..%2Fetc a%2Fb %2e%2e .hidden a%00b a%zz "$(printf 'x%.0s' {1..65})"; do
	expect 400 "name '$n'" "${ADMIN[@]}" "$U/images/$n"
	expect 400 "name '$n' (data)" "${ADMIN[@]}" "$U/images/$n/versions/1/data"
done
for v in 01 -1 1a abc 99999999999999999999999 " 1"; do
	expect 400 "version '$v'" "${ADMIN[@]}" "$U/images/demo/versions/${v// /%20}/data"
done

# Tokens.
expect 401 "no token" "$V1/data"
grep -qi '^www-authenticate: bearer' "$T/hdr" || fail "401 without WWW-Authenticate"
expect 401 "unknown token" -H "Authorization: Bearer vmf_not-a-token" "$V1/data"
expect 401 "not a bearer token" -H "Authorization: Basic dXNlcjpwdw==" "$V1/data"
expect 401 "empty bearer" -H "Authorization: Bearer " "$V1/data"
expect 401 "no token for stats" "$U/stats"
TOK=$("$VMFERRY_SERVER" token add "$SERVER_DIR" --name other --read other 2>/dev/null)
expect 403 "no grant" -H "Authorization: Bearer $TOK" "$V1/data"
expect 403 "no grant (metadata)" -H "Authorization: Bearer $TOK" "$U/images/demo"
expect 403 "not admin" -H "Authorization: Bearer $TOK" "$U/stats"
expect 403 "read-only PUT" -H "Authorization: Bearer $TOK" -X PUT --data-binary x \
	"$U/blocks/$(printf x | sha256sum | cut -d' ' -f1)"
ID=$("$VMFERRY_SERVER" token list "$SERVER_DIR" | awk '$3 == "other" {print $1}')
"$VMFERRY_SERVER" token revoke "$SERVER_DIR" "$ID" >/dev/null || fail "revoke"
expect 401 "revoked token" -H "Authorization: Bearer $TOK" "$V1/data"

# An oversized header: libmicrohttpd answers it (not in JSON).
big=$(head -c 100000 /dev/zero | tr '\0' a)
code=$(curl -sS --cacert "$CACERT" -o /dev/null -w '%{http_code}' "${ADMIN[@]}" \
	-H "X-Big: $big" "$V1/data" || true)
case "$code" in 4??) ;; *) fail "oversized header gave '$code'" ;; esac
alive

# Uploads.
printf 'block data' >"$T/blk"
H=$(sha256sum <"$T/blk" | cut -d' ' -f1)
expect 400 "PUT with the wrong hash" "${ADMIN[@]}" -X PUT --data-binary @"$T/blk" \
	"$U/blocks/$(printf other | sha256sum | cut -d' ' -f1)"
expect 400 "PUT to a bad hash" "${ADMIN[@]}" -X PUT --data-binary @"$T/blk" "$U/blocks/xyz"
head -c 4096 /dev/zero >"$T/zero"
expect 400 "PUT a zero block" "${ADMIN[@]}" -X PUT --data-binary @"$T/zero" \
	"$U/blocks/$(sha256sum <"$T/zero" | cut -d' ' -f1)"
expect 400 "PUT empty" "${ADMIN[@]}" -X PUT -H "Content-Length: 0" "$U/blocks/$H"
head -c $((4 * 1048576 + 1)) /dev/urandom >"$T/huge"
expect 413 "PUT too large" "${ADMIN[@]}" -X PUT --data-binary @"$T/huge" "$U/blocks/$H"
expect 400 "missing: not a multiple of 32" "${ADMIN[@]}" --data-binary "0123456789" "$U/blocks/missing"
head -c $((65537 * 32)) /dev/zero >"$T/many"
expect 413 "missing: too many hashes" "${ADMIN[@]}" --data-binary @"$T/many" "$U/blocks/missing"
scurl -o "$T/manifest" "$V1/manifest"
C=(-H "Vmferry-Commit-Id: bad-input-commit-0001")
expect 409 "commit on a wrong base" "${ADMIN[@]}" "${C[@]}" -H "Vmferry-Base-Version: 7" \
	--data-binary @"$T/manifest" "$U/images/demo/versions"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["current_version"] == 1' "$T/body" ||
	fail "409 without current_version"
expect 400 "commit without an id" "${ADMIN[@]}" -H "Vmferry-Base-Version: 1" \
	--data-binary @"$T/manifest" "$U/images/demo/versions"
expect 400 "commit with a short id" "${ADMIN[@]}" -H "Vmferry-Commit-Id: short" \
	-H "Vmferry-Base-Version: 1" --data-binary @"$T/manifest" "$U/images/demo/versions"
expect 400 "commit without a base" "${ADMIN[@]}" "${C[@]}" \
	--data-binary @"$T/manifest" "$U/images/demo/versions"
expect 400 "commit of garbage" "${ADMIN[@]}" "${C[@]}" -H "Vmferry-Base-Version: 1" \
	--data-binary @"$T/blk" "$U/images/demo/versions"
head -c 100 "$T/manifest" >"$T/short"
expect 400 "commit of a truncated manifest" "${ADMIN[@]}" "${C[@]}" -H "Vmferry-Base-Version: 1" \
	--data-binary @"$T/short" "$U/images/demo/versions"
cat "$T/manifest" "$T/blk" >"$T/long"
expect 400 "commit of an overlong manifest" "${ADMIN[@]}" "${C[@]}" -H "Vmferry-Base-Version: 1" \
	--data-binary @"$T/long" "$U/images/demo/versions"
expect 400 "commit to a bad name" "${ADMIN[@]}" "${C[@]}" -H "Vmferry-Base-Version: 0" \
	--data-binary @"$T/manifest" "$U/images/..%2Fx/versions"
# Nothing above changed the image.
scurl "$U/images/demo" | grep -q '"version":1,' || fail "a bad commit made a version"
[ "$(scurl "$V1/data" | sha256sum | cut -d' ' -f1)" = "$WANT" ] || fail "data changed"
[ -z "$(ls "$SERVER_DIR/tmp")" ] || fail "uploads left in tmp/: $(ls "$SERVER_DIR/tmp")"
# A clean stop: SIGTERM gives exit 0 (under ASan: no error, no leak).
kill "$SERVER_PID"
wait "$SERVER_PID" || fail "vmferry-server exited with status $? on SIGTERM"
SERVER_PID=
echo ok
