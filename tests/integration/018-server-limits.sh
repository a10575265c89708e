#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Limits, each set by a serve option and hit by a real client: request
# head size (431), body size (413), slow heads and bodies (cut off at
# the request deadline), connections per address.  After each abuse a
# normal request still works, and the others are served meanwhile.
source "$(dirname "$0")/../lib.sh"
requires curl python3

SLOW="$TOP/tests/helpers/slow-client.py"
make_image "$T/data/img" 200000 3
start_server "$T/srv" --max-header-size 16K --max-body-size 64K \
	--request-timeout 3 --min-upload-rate 100 --idle-timeout 30 \
	--max-connections-per-address 4
import_image demo "$T/data/img"
U=$SERVER_URL/v1
ADMIN=(-H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")")
code() { curl -sS --cacert "$CACERT" -o "$T/body" -w '%{http_code}' "$@" || true; }
alive() {
	[ "$(code "${ADMIN[@]}" "$U/images/demo/versions/1/data")" = 200 ] ||
		fail "server no longer serves after: $1"
	cmp -s "$T/body" "$T/data/img" || fail "wrong data after: $1"
}

# Head size: 10 KiB of header passes, 20 KiB gets 431.
h10=$(head -c 10000 /dev/zero | tr '\0' a)
h20=$(head -c 20000 /dev/zero | tr '\0' a)
[ "$(code "${ADMIN[@]}" -H "X-Pad: $h10" "$U/images/demo")" = 200 ] || fail "10 KiB head refused"
c=$(code "${ADMIN[@]}" -H "X-Pad: $h20" "$U/images/demo")
[ "$c" = 431 ] || fail "20 KiB head gave $c, want 431"
alive "an oversized head"

# Body size: a 100 KB block gets 413, announced or chunked.
head -c 100000 /dev/urandom >"$T/big"
H=$(sha256sum <"$T/big" | cut -d' ' -f1)
# Expect: 100-continue, as a careful client sends: the 413 comes before
# the body (without it the server's early answer races curl's sending,
# and curl may report a broken pipe instead of the status).
c=$(code "${ADMIN[@]}" -H 'Expect: 100-continue' -X PUT --data-binary @"$T/big" "$U/blocks/$H")
[ "$c" = 413 ] || fail "100 KB block gave $c, want 413"
grep -q '"status":413' "$T/body" || fail "413 without a JSON error: $(cat "$T/body")"
# A valid manifest header for 4000 blocks (128064 bytes), then zeros.
python3 -c 'import struct,sys
h = b"VMFMANI1" + struct.pack("<IIQQQ", 1, 4096, 4000 * 4096, 4000, 0) + bytes(24)
sys.stdout.buffer.write(h + bytes(100000))' >"$T/manifest"
c=$(code "${ADMIN[@]}" -X POST -H "Transfer-Encoding: chunked" -H 'Expect: 100-continue' \
	-H "Vmferry-Commit-Id: limits-chunked-commit-01" -H "Vmferry-Base-Version: 1" \
	--data-binary @"$T/manifest" "$U/images/demo/versions")
[ "$c" = 413 ] || fail "chunked 100 KB commit gave $c, want 413"
head -c 50000 /dev/urandom >"$T/ok"
c=$(code "${ADMIN[@]}" -X PUT --data-binary @"$T/ok" "$U/blocks/$(sha256sum <"$T/ok" | cut -d' ' -f1)")
[ "$c" = 201 ] || fail "50 KB block gave $c, want 201"
alive "an oversized body"

# A head trickled one line a second is cut at the 3 s deadline, and
# the server serves others meanwhile.
python3 "$SLOW" head "$SERVER_PORT" "$CACERT" 1 15 >"$T/head.out" &
slow=$!
sleep 1
alive "(during a slow head)"
wait "$slow" || fail "slow head not cut off: $(cat "$T/head.out")"
t=$(cat "$T/head.out")
python3 -c 'import sys; t=float(sys.argv[1]); sys.exit(0 if 2.5 <= t <= 7 else 1)' "$t" ||
	fail "slow head cut after $t s, want about 3"
alive "a slow head"

# A body trickled a byte a second (under 100 bytes/s) is cut too.
python3 "$SLOW" body "$SERVER_PORT" "$CACERT" "$(cat "$ADMIN_TOKEN_FILE")" 1 15 >"$T/body.out" ||
	fail "slow body not cut off: $(cat "$T/body.out")"
alive "a slow body"
grep -q '127.0.0.1: closed a connection sending a request too slowly' "$T/logs/server.log" ||
	fail "no log of the cut"

# A connection that sends nothing at all (no TLS hello) is cut at the
# deadline too, long before the 30 s idle timeout.
t=$(python3 "$SLOW" silent "$SERVER_PORT" 15) || fail "silent connection not cut: $t"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 7 else 1)' "$t" ||
	fail "silent connection cut after $t s"
alive "a silent connection"

# Connections per address: 4 held, a fifth refused; another address
# (127.0.0.2) is still served; once they close, all is well.
python3 "$SLOW" hold "$SERVER_PORT" "$CACERT" 6 3 >"$T/hold.out" &
hold=$!
for ((i = 0; i < 50; i++)); do [ -s "$T/hold.out" ] && break; sleep 0.1; done
[ "$(cat "$T/hold.out")" = 4 ] || fail "held $(cat "$T/hold.out") connections, want 4"
c=$(code "${ADMIN[@]}" "$U/images/demo")
[ "$c" = 000 ] || fail "a fifth connection got $c"
c=$(code --interface 127.0.0.2 "${ADMIN[@]}" "$U/images/demo")
[ "$c" = 200 ] || fail "another address got $c while 127.0.0.1 is at its limit"
wait "$hold"
alive "too many connections"

# Option errors are usage errors.
for bad in "--max-header-size 1" "--max-body-size x" "--request-timeout -1" \
	"--max-connections-per-address 0" "--idle-timeout 0" "--auth-fail-window 0"; do
	set +e
	# shellcheck disable=SC2086
	"$VMFERRY_SERVER" serve "$SERVER_DIR" $bad 2>"$T/err"
	st=$?
	set -e
	[ "$st" = 2 ] || fail "serve $bad: exit $st, want 2"
	grep -q "want" "$T/err" || fail "serve $bad: unclear error: $(cat "$T/err")"
done
echo ok
