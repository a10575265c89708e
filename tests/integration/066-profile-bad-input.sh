#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The boot-profile route refuses bad input with a clear 4xx and a JSON
# error, and stores nothing: malformed bodies, indices out of range,
# duplicates, too many blocks, a body too large, the wrong version, an
# unknown image or version, no token, no grant.  Read is enough to
# upload (docs/protocol.md, "Boot profiles").
source "$(dirname "$0")/../lib.sh"

start_server "$T/srv"
head -c $((16 * 65536)) /dev/urandom >"$T/data/img.raw"
import_image disk "$T/data/img.raw"
import_image other "$T/data/img.raw"
URL="$SERVER_URL/v1/images/disk/versions/1/profile"
READER=$("$VMFERRY_SERVER" token add "$SERVER_DIR" --name reader --read disk 2>/dev/null)
OUTSIDER=$("$VMFERRY_SERVER" token add "$SERVER_DIR" --name outsider --read other 2>/dev/null)

# put WANT_STATUS BODY [URL [TOKEN]]: PUT BODY; the status must be WANT
# and an error's body must say why in JSON.
put() {
	local want=$1 body=$2 url=${3:-$URL} tok=${4:-$(cat "$ADMIN_TOKEN_FILE")}
	local got
	printf '%s' "$body" >"$T/body"
	got=$(curl -sS --cacert "$CACERT" -H "Authorization: Bearer $tok" -X PUT \
		-H 'Content-Type: application/json' --data-binary @"$T/body" \
		-o "$T/answer" -w '%{http_code}' "$url")
	[ "$got" = "$want" ] || fail "PUT $(head -c 60 "$T/body") to $url: $got, want $want: $(cat "$T/answer")"
	if [ "$want" -ge 400 ]; then
		python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["error"] and j["status"] == int(sys.argv[2])' \
			"$T/answer" "$want" || fail "no JSON error for $want: $(cat "$T/answer")"
	fi
}
no_profile() {
	[ "$(scurl -o /dev/null -w '%{http_code}' "$URL")" = 404 ] || fail "a profile was stored: $1"
}

# Malformed bodies.
put 400 'not json'
put 400 '[1, 2, 3]'
put 400 '{"version": 1}'
put 400 '{"version": 1, "blocks": 5}'
put 400 '{"version": 1, "blocks": []}'
put 400 '{"version": 1, "blocks": ["3"]}'
put 400 '{"version": 1, "blocks": [1.5]}'
put 400 '{"version": 1, "version": 1, "blocks": [1]}'
grep -q '"error": *"invalid profile' "$T/answer" || fail "unclear message: $(cat "$T/answer")"
# Indices out of range, duplicates.
put 400 '{"version": 1, "blocks": [16]}'
grep -q 'below' "$T/answer" || fail "out of range: unclear message: $(cat "$T/answer")"
put 400 '{"version": 1, "blocks": [-1]}'
put 400 '{"version": 1, "blocks": [3, 4, 3]}'
grep -q 'twice' "$T/answer" || fail "duplicate: unclear message: $(cat "$T/answer")"
# Too many blocks (65537), and a body over the route's 1 MiB.
put 400 "$(python3 -c 'import json; print(json.dumps({"version": 1, "blocks": list(range(65537))}))')"
put 413 "$(python3 -c 'print("{\"version\": 1, \"blocks\": [" + " " * (1 << 20) + "1]}")')"
# The wrong version: in the body, or one the image does not have.
put 400 '{"version": 2, "blocks": [1]}'
grep -q "not the URL" "$T/answer" || fail "wrong version: unclear message: $(cat "$T/answer")"
put 404 '{"version": 2, "blocks": [1]}' "$SERVER_URL/v1/images/disk/versions/2/profile"
put 404 '{"version": 0, "blocks": [1]}' "$SERVER_URL/v1/images/disk/versions/0/profile"
put 400 '{"version": 1, "blocks": [1]}' "$SERVER_URL/v1/images/disk/versions/01/profile"
# An unknown image; a method the route lacks.
put 404 '{"version": 1, "blocks": [1]}' "$SERVER_URL/v1/images/nosuch/versions/1/profile"
grep -q 'no image nosuch' "$T/answer" || fail "unknown image: $(cat "$T/answer")"
code=$(scurl -X POST --data '{}' -o /dev/null -w '%{http_code}' "$URL")
[ "$code" = 405 ] || fail "POST: $code"
# No token, a wrong token, a token without a grant on the image.
code=$(curl -sS --cacert "$CACERT" -X PUT --data '{"version": 1, "blocks": [1]}' -o /dev/null -w '%{http_code}' "$URL")
[ "$code" = 401 ] || fail "no token: $code"
put 401 '{"version": 1, "blocks": [1]}' "$URL" not-a-token
put 403 '{"version": 1, "blocks": [1]}' "$URL" "$OUTSIDER"
code=$(curl -sS --cacert "$CACERT" -H "Authorization: Bearer $OUTSIDER" -o /dev/null -w '%{http_code}' "$URL")
[ "$code" = 403 ] || fail "GET without read: $code"
no_profile "after bad input"
# GET of a version the image lacks: 404.
code=$(scurl -o /dev/null -w '%{http_code}' "$SERVER_URL/v1/images/disk/versions/9/profile")
[ "$code" = 404 ] || fail "GET version 9: $code"

# Read on the image is enough; the profile is then served.
put 200 '{"version": 1, "blocks": [3, 1, 2]}' "$URL" "$READER"
[ "$(scurl "$URL" | python3 -c 'import json,sys; print(*json.load(sys.stdin)["blocks"])')" = "3 1 2" ] ||
	fail "profile not stored"
grep -q '"action":"profile.put"' "$SERVER_DIR/audit.log" || fail "no audit record"
