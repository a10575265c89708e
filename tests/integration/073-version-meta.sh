#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# GET /v1/images/NAME/versions/N: any committed version's sizes and
# manifest_sha256, the SHA-256 of that version's stored manifest (the
# value a client finishing a crash-cut sync checks version N's manifest
# against), no-cache like the image's metadata; the current version's
# fields equal GET /v1/images/NAME's.  A version that is not there is a
# 404, a bad number a 400, a POST a 405, a token without read a 403.
source "$(dirname "$0")/../lib.sh"
requires python3 curl

start_server "$T/srv"
make_image "$T/data/v1.raw" $((1024 * 1024 + 4096)) 72
import_image disk "$T/data/v1.raw"
make_image "$T/data/v2.raw" $((1024 * 1024 + 4096)) 73
import_image disk "$T/data/v2.raw"
U="$SERVER_URL/v1/images/disk"

# field JSON NAME
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

for v in 1 2; do
	scurl -D "$T/hdr-$v" "$U/versions/$v" >"$T/meta-$v" || fail "GET version $v"
	m=$(cat "$T/meta-$v")
	man=$(find "$T/srv" -name "$v.manifest" -path '*disk*' | head -1)
	[ -f "$man" ] || fail "no stored manifest for version $v"
	[ "$(field "$m" manifest_sha256)" = "$(sha256sum <"$man" | cut -d' ' -f1)" ] ||
		fail "version $v: manifest_sha256 is not its stored manifest's SHA-256: $m"
	[ "$(field "$m" manifest_size)" = "$(stat -c %s "$man")" ] || fail "version $v: manifest_size: $m"
	[ "$(field "$m" version)" = "$v" ] || fail "version $v: version: $m"
	[ "$(field "$m" size)" = $((1024 * 1024 + 4096)) ] || fail "version $v: size: $m"
	grep -qi '^cache-control: no-cache' "$T/hdr-$v" || fail "version $v: not no-cache: $(cat "$T/hdr-$v")"
done
[ "$(field "$(cat "$T/meta-1")" manifest_sha256)" != "$(field "$(cat "$T/meta-2")" manifest_sha256)" ] ||
	fail "two different versions have the same manifest_sha256"
img=$(scurl "$U")
for f in version size block_size blocks manifest_size manifest_sha256; do
	[ "$(field "$img" "$f")" = "$(field "$(cat "$T/meta-2")" "$f")" ] ||
		fail "$f of the current version differs from the image's metadata"
done

# expect STATUS WHAT CURL-ARGS...
expect() {
	local want=$1 what=$2 code
	shift 2
	code=$(curl -sS --cacert "$CACERT" -o "$T/body" -w '%{http_code}' "$@") || fail "$what: curl"
	[ "$code" = "$want" ] || fail "$what: HTTP $code, want $want: $(cat "$T/body")"
}
ADMIN=(-H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")")
expect 404 "version 3" "${ADMIN[@]}" "$U/versions/3"
grep -q "no version 3" "$T/body" || fail "404 without the reason: $(cat "$T/body")"
expect 404 "version 0" "${ADMIN[@]}" "$U/versions/0"
expect 404 "no image" "${ADMIN[@]}" "$SERVER_URL/v1/images/other/versions/1"
expect 400 "version 01" "${ADMIN[@]}" "$U/versions/01"
expect 405 "POST" "${ADMIN[@]}" -X POST --data-binary x "$U/versions/1"
expect 401 "no token" "$U/versions/1"
TOK=$("$VMFERRY_SERVER" token add "$SERVER_DIR" --name other --read other 2>/dev/null)
expect 403 "no grant" -H "Authorization: Bearer $TOK" "$U/versions/1"
expect 200 "HEAD" "${ADMIN[@]}" -I "$U/versions/1"
exit 0
