#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# No request reaches a file outside the store: traversal, encoded
# slashes and dots, absolute, overlong and NUL names against every route
# that takes NAME, N or HEX get 400 or 404 (JSON errors), never a file's
# contents, and create nothing.
source "$(dirname "$0")/../lib.sh"
requires curl python3

make_image "$T/data/img" 100000 8
start_server "$T/srv"
import_image demo "$T/data/img"
# Canaries where a traversal would land.
echo CANARY-OUTSIDE >"$T/canary"
mkdir -p "$T/versions/1" && echo CANARY-OUTSIDE >"$T/versions/1/manifest"
U=$SERVER_URL/v1
TOK=$(cat "$ADMIN_TOKEN_FILE")
(cd "$T" && find . -path ./logs -prune -o -print | sort) >"$T/before"

long=$(printf 'a%.0s' {1..65})
huge=$(printf 'b%.0s' {1..3000})
names=(.. . %2e%2e %2E%2E .%2e %2e. ..%2F..%2Fcanary ..%2f..%2f..%2fetc%2fpasswd
	%2F %2Fetc%2Fpasswd %2F%2Fetc a%2Fb ..%5C..%5Ccanary %00 a%00b demo%00
	%252e%252e %c0%ae%c0%ae .hidden a%20b "$long" "$huge" a%zz %)
hexes=(.. %2e%2e ..%2F..%2Ftokens.json %2Fetc%2Fpasswd
	"$(printf '0%.0s' {1..63})" "$(printf '0%.0s' {1..65})"
	"$(printf 'a%.0s' {1..31})%00$(printf 'a%.0s' {1..32})" "$(printf 'g%.0s' {1..64})")
versions=(..%2F..%2F1 %2e%2e 1%00 %2F1 -1 01)

n=0
try() { # try METHOD URL [curl args]: 400 or 404 with a JSON error
	local m=$1 url=$2 code how=(-X "$1")
	shift 2
	[ "$m" != HEAD ] || how=(--head)
	code=$(curl -sS --path-as-is --cacert "$CACERT" -o "$T/body" -w '%{http_code}' \
		-H "Authorization: Bearer $TOK" "${how[@]}" "$@" "$url") || fail "$m $url: curl"
	case $code in 400 | 404) ;; *) fail "$m $url: HTTP $code: $(head -c 300 "$T/body")" ;; esac
	! grep -q CANARY "$T/body" || fail "$m $url: a file outside the store"
	[ "$m" = HEAD ] || grep -q "\"status\":$code" "$T/body" || fail "$m $url: not a JSON error"
	echo "$code $m ${url#"$SERVER_URL"}" >>"$T/logs/answers"
	n=$((n + 1))
}
J=(-H 'Content-Type: application/json')
for x in "${names[@]}"; do
	try GET "$U/images/$x"
	try HEAD "$U/images/$x"
	try GET "$U/images/$x/versions"
	try POST "$U/images/$x/versions" -H "Vmferry-Commit-Id: names-test-commit-001" \
		-H "Vmferry-Base-Version: 0" --data-binary @"$T/canary"
	try POST "$U/images/$x/lease" "${J[@]}" -d '{"holder":"h","where":"local"}'
	try DELETE "$U/images/$x/lease" -H "Vmferry-Lease-Id: $(printf '0%.0s' {1..32})"
	try POST "$U/images/$x/pins" "${J[@]}" -d '{"holder":"h","version":1}'
	try DELETE "$U/images/$x/pins" -H "Vmferry-Pin-Id: $(printf '0%.0s' {1..32})"
	try GET "$U/images/$x/versions/1/manifest"
	try GET "$U/images/$x/versions/1/data"
done
for v in "${versions[@]}"; do
	try GET "$U/images/demo/versions/$v/manifest"
	try GET "$U/images/demo/versions/$v/data"
done
for h in "${hexes[@]}"; do
	try PUT "$U/blocks/$h" --data-binary @"$T/canary"
done
# Literal traversal in the path itself.
try GET "$U/images/demo/../../../canary"
try GET "$U/images/../../canary/versions/1/data"
try GET "$SERVER_URL/v1/../../../../etc/passwd"
try PUT "$U/blocks/../../canary" --data-binary @"$T/canary"

# Nothing was created anywhere but the store's own files.
(cd "$T" && find . -path ./logs -prune -o -print | sort) >"$T/after"
diff "$T/before" "$T/after" | grep '^>' | grep -v '^> ./srv/\(audit.log\|tmp\|images/demo/lock\)$' |
	grep -v '^> ./\(body\|after\)$' >"$T/new" || true
[ ! -s "$T/new" ] || fail "files appeared: $(cat "$T/new")"
[ "$(ls "$SERVER_DIR/images")" = demo ] || fail "images: $(ls "$SERVER_DIR/images")"
[ -z "$(ls "$SERVER_DIR/tmp")" ] || fail "left in tmp: $(ls "$SERVER_DIR/tmp")"
# The server still answers.
[ "$(scurl "$U/images/demo/versions/1/data" | cmp - "$T/data/img" && echo same)" = same ] ||
	fail "server no longer serves"
cat "$T/logs/answers"
echo "ok: $n bad names, versions and hashes refused"
