#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Authentication and transport: failed tokens are rate limited per
# address (429 + Retry-After, other addresses unaffected); a revoked
# token is refused on an open keep-alive connection's next request;
# TLS 1.2 and 1.3 only; secret files readable by others are refused.
source "$(dirname "$0")/../lib.sh"
requires curl python3 openssl

make_image "$T/data/img" 100000 4
start_server "$T/srv" --auth-fail-max 5 --auth-fail-window 4
import_image demo "$T/data/img"
U=$SERVER_URL/v1
ADMIN=(-H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")")
code() { curl -sS --cacert "$CACERT" -D "$T/hdr" -o "$T/body" -w '%{http_code}' "$@" || true; }

# Rate limit: 5 bad tokens from 127.0.0.1, then even the admin token
# gets 429 there, while 127.0.0.2 is served.
for i in 1 2 3 4 5; do
	c=$(code -H "Authorization: Bearer vmf_guess$i" "$U/images")
	[ "$c" = 401 ] || fail "guess $i gave $c, want 401"
done
c=$(code "${ADMIN[@]}" "$U/images")
[ "$c" = 429 ] || fail "after 5 failures: $c, want 429"
grep -qi '^retry-after: [1-4]' "$T/hdr" || fail "429 without Retry-After: $(cat "$T/hdr")"
grep -q '"status":429' "$T/body" || fail "429 without a JSON error"
c=$(code --interface 127.0.0.2 "${ADMIN[@]}" "$U/images")
[ "$c" = 200 ] || fail "another address got $c"
# Requests without any token are not guesses: no 429 for 127.0.0.3.
for i in 1 2 3 4 5 6; do
	c=$(code --interface 127.0.0.3 "$U/images")
	[ "$c" = 401 ] || fail "tokenless request $i from 127.0.0.3 gave $c"
done
sleep 4.5
c=$(code "${ADMIN[@]}" "$U/images")
[ "$c" = 200 ] || fail "still refused after the window: $c"
grep -q '"action":"auth.blocked","source":"http","status":429.*"addr":"127.0.0.1"' \
	"$SERVER_DIR/audit.log" || fail "no audit record of the block"

# A revoked token is refused on an already open connection.
TOK=$("$VMFERRY_SERVER" token add "$SERVER_DIR" --name keepalive --read demo 2>/dev/null)
ID=$("$VMFERRY_SERVER" token list "$SERVER_DIR" | awk '$3 == "keepalive" {print $1}')
python3 - "$SERVER_PORT" "$CACERT" "$TOK" "$VMFERRY_SERVER" "$SERVER_DIR" "$ID" <<'PY' ||
import http.client, ssl, subprocess, sys
port, cacert, tok, server, d, tid = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cacert)
c = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx)
hdr = {"Authorization": "Bearer " + tok}
c.request("GET", "/v1/images/demo", headers=hdr)
r = c.getresponse(); r.read()
assert r.status == 200, r.status
sock = c.sock
local = sock.getsockname()
subprocess.run([server, "token", "revoke", d, tid], check=True,
               stdout=subprocess.DEVNULL)
c.request("GET", "/v1/images/demo", headers=hdr)
r = c.getresponse(); body = r.read()
assert c.sock is sock and sock.getsockname() == local, "reconnected"
assert r.status == 401, (r.status, body)
print("keep-alive revoke ok")
PY
	fail "revoked token on a keep-alive connection"

# TLS: 1.1 refused by the server, 1.2 and 1.3 accepted.
tls() { openssl s_client -connect "127.0.0.1:$SERVER_PORT" -CAfile "$CACERT" "$@" </dev/null >"$T/tls.out" 2>&1; }
tls -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' && fail "TLS 1.1 accepted"
# The client did offer it (no "no protocols available"), and the server
# ended the handshake (an alert, or GnuTLS just closes).
! grep -q 'no protocols available' "$T/tls.out" || fail "the client refused TLS 1.1 itself"
grep -q 'Cipher is (NONE)' "$T/tls.out" &&
	grep -Eqi 'alert protocol version|unexpected eof' "$T/tls.out" ||
	fail "TLS 1.1 failed for another reason: $(head -3 "$T/tls.out")"
tls -tls1_2 || fail "TLS 1.2 refused: $(tail -5 "$T/tls.out")"
grep -q 'Protocol *: TLSv1.2' "$T/tls.out" || fail "not TLS 1.2"
tls -tls1_3 || fail "TLS 1.3 refused"
grep -q 'TLSv1.3' "$T/tls.out" || fail "not TLS 1.3"
stop_server

# Secret files readable by group or others: refused with a clear error.
for f in key.pem tokens.json; do
	chmod 640 "$SERVER_DIR/$f"
	set +e
	"$VMFERRY_SERVER" serve "$SERVER_DIR" --listen 127.0.0.1:0 2>"$T/err"
	st=$?
	set -e
	[ "$st" = 1 ] || fail "served with $f mode 640 (exit $st)"
	grep -q "$f.*chmod 600" "$T/err" || fail "unclear error for $f: $(cat "$T/err")"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "error is not one line: $(cat "$T/err")"
	chmod 600 "$SERVER_DIR/$f"
done
cp "$SERVER_DIR/key.pem" "$T/other.key"
chmod 604 "$T/other.key"
set +e
"$VMFERRY_SERVER" serve "$SERVER_DIR" --cert "$SERVER_DIR/cert.pem" --key "$T/other.key" 2>"$T/err"
st=$?
set -e
[ "$st" = 1 ] && grep -q "other.key.*chmod 600" "$T/err" || fail "--key readable by others: $(cat "$T/err")"
start_server "$SERVER_DIR"
[ "$(code "${ADMIN[@]}" "$SERVER_URL/v1/images/demo")" = 200 ] || fail "server with mode 600 files"
echo ok
