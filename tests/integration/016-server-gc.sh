#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Retention and garbage collection: twelve imports each changing a few
# blocks; `gc --keep-versions 3 --grace 0` keeps the three newest
# versions byte for byte, answers 404 for the others, and leaves exactly
# the blocks they name; --dry-run changes nothing; reads of the current
# version run throughout without a failure.
. "$(dirname "$0")/../lib.sh"
requires curl python3 sha256sum

BS=4096
python3 - "$T/data" "$BS" <<'PY'
import os, random, sys
d, bs = sys.argv[1], int(sys.argv[2])
rng = random.Random(16)
img = bytearray(rng.randbytes(64 * bs))
img[10 * bs:14 * bs] = bytes(4 * bs)  # zero blocks too
for v in range(1, 13):
    if v > 1:
        for b in rng.sample(range(64), 3):
            img[b * bs:(b + 1) * bs] = rng.randbytes(bs)
    open(os.path.join(d, "v%d.img" % v), "wb").write(img)
PY

start_server "$T/srv"
for v in $(seq 1 12); do
	import_image demo "$T/data/v$v.img" --block-size 4K
done
U=$SERVER_URL/v1/images/demo
nblocks() { find "$T/srv/blocks" -type f | wc -l; }
code() { scurl -o "$T/body" -w '%{http_code}' "$U/versions/$1/data"; }

# What versions 10-12 name, computed from the imported files.
WANT=$(python3 - "$T/data" "$BS" <<'PY'
import hashlib, os, sys
d, bs = sys.argv[1], int(sys.argv[2])
used = set()
for v in (10, 11, 12):
    data = open(os.path.join(d, "v%d.img" % v), "rb").read()
    for i in range(0, len(data), bs):
        b = data[i:i + bs]
        if b.count(0) != len(b):
            used.add(hashlib.sha256(b).hexdigest())
print(len(used))
PY
)
BEFORE=$(nblocks)
[ "$BEFORE" -gt "$WANT" ] || fail "nothing to collect: $BEFORE blocks, $WANT used"

# --dry-run: counts, changes nothing.
"$VMFERRY_SERVER" gc "$T/srv" --keep-versions 3 --grace 0 --dry-run \
	>"$T/dry.out" 2>"$T/logs/gc-dry.log" || fail "gc --dry-run"
grep -q "would remove" "$T/dry.out" || fail "dry run output: $(cat "$T/dry.out")"
[ "$(nblocks)" = "$BEFORE" ] || fail "dry run removed blocks"
[ "$(code 1)" = 200 ] || fail "dry run dropped version 1"

# Reads of the current version in a loop while gc runs.
cmp_loop() {
	while [ ! -e "$T/stop" ]; do
		scurl -f "$U/versions/12/data" -o "$T/loop.img" || exit 1
		cmp -s "$T/loop.img" "$T/data/v12.img" || exit 2
	done
}
cmp_loop &
LOOP=$!
"$VMFERRY_SERVER" gc "$T/srv" --keep-versions 3 --grace 0 \
	>"$T/gc.out" 2>"$T/logs/gc.log" || fail "gc"
touch "$T/stop"
wait "$LOOP" || fail "a read during gc failed (status $?)"
cat "$T/gc.out" >>"$T/logs/gc.log"

[ "$(nblocks)" = "$WANT" ] || fail "$(nblocks) blocks left, want $WANT"
grep -q "9 dropped" "$T/gc.out" || fail "gc output: $(cat "$T/gc.out")"
for v in 10 11 12; do
	[ "$(code $v)" = 200 ] || fail "version $v: HTTP $(code $v)"
	cmp -s "$T/body" "$T/data/v$v.img" || fail "version $v differs"
done
for v in 1 5 9; do
	[ "$(code $v)" = 404 ] || fail "dropped version $v: HTTP $(code $v)"
done
# The history lists the kept versions only.
[ "$("$VMFERRY_SERVER" versions "$T/srv" demo | grep -c '^[0-9]')" = 3 ] ||
	fail "versions lists dropped versions"

# A second gc finds nothing more; a new import still works.
"$VMFERRY_SERVER" gc "$T/srv" --keep-versions 3 --grace 0 >"$T/gc2.out" ||
	fail "second gc"
grep -q " 0 removed" "$T/gc2.out" || fail "second gc: $(cat "$T/gc2.out")"
import_image demo "$T/data/v1.img" --block-size 4K
[ "$(code 13)" = 200 ] && cmp -s "$T/body" "$T/data/v1.img" ||
	fail "import after gc"
