#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The compression policy (--compress=auto|on|off, fusefs/zpolicy.h):
#   - auto (the default) hydrates a compressible image right (sha256),
#     measures both ways (zstd asked and not) on hydration's ranges, and
#     uses the one its own averages favour (which one is not asserted: it
#     depends on this machine's speed);
#   - on: the server sends well below the image's data bytes;
#   - off (and --no-compress): about the data bytes, never compressed;
#   - bad values are refused with a clear error, by mount and run.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
# 48 MiB of text-like blocks (no zero blocks: every byte is data), each
# cut at its own place from a pool of words, so the server's sampler
# finds every range compressible (about 2.5x) and no two blocks alike.
python3 - "$T/data/text.raw" <<'PY'
import random, sys
rng = random.Random(72)
words = [bytes(rng.choice(b"abcdefghij klmnop\n") for _ in range(rng.randint(3, 9))) for _ in range(500)]
pool = b" ".join(rng.choice(words) for _ in range(700000))
with open(sys.argv[1], "wb") as f:
    for i in range(48 * 16):
        o = rng.randrange(len(pool) - 65536)
        f.write(pool[o:o + 65536])
PY
import_image text "$T/data/text.raw"
data=$(stat -c %s "$T/data/text.raw")
want=$(sha256sum <"$T/data/text.raw" | cut -d' ' -f1)

# hydrate [OPTIONS]: a fresh read-only mount, hydrated; the server's
# bytes sent for it in $sent and the copy checked against the image.
hydrate() {
	rm -rf "$T/cache"
	local sent0
	sent0=$(server_stat bytes_sent)
	local t0 t1
	t0=$(date +%s.%N)
	mount_image "$SERVER_URL/text" "$T/mnt" --read-only --no-profile "$@"
	wait_hydrated 120
	t1=$(date +%s.%N)
	sent=$(($(server_stat bytes_sent) - sent0))
	got=$(sha256sum <"$T/mnt/text.img" | cut -d' ' -f1)
	[ "$got" = "$want" ] || fail "$*: read $got, want $want"
	"$VMFERRY" status --json "$T/mnt" >"$T/status.json"
	"$VMFERRY" status "$T/mnt" >"$T/status.txt"
	st() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$T/status.json" "$1"; }
	echo "${*:-(default)}: $data data bytes, server sent $sent; $(grep '^compress:' "$T/status.txt")"
	# The daemon's own clock for the copy (bench.sh times hydration by
	# it): after the daemon started, before the poll above saw it.
	python3 - "$(st complete_after_s)" "$t0" "$t1" <<'PY' || fail "complete_after_s $(st complete_after_s), polled $t0..$t1"
import sys
after, t0, t1 = (float(a) for a in sys.argv[1:])
assert 0 < after <= t1 - t0
PY
	grep -Eq '^cached: .*, complete [0-9.]+ s after the mount started$' "$T/status.txt" ||
		fail "status: $(grep '^cached:' "$T/status.txt")"
}

# 1. auto, the default: both ways measured, the choice its averages'.
hydrate
[ "$(st compress)" = auto ] || fail "default policy: $(st compress)"
grep -q '^compress: auto, ' "$T/status.txt" || fail "status: $(cat "$T/status.txt")"
python3 - "$T/status.json" <<'PY' || fail "auto: $(cat "$T/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
z, r = s["goodput_zstd_bps"], s["goodput_raw_bps"]
# zpolicy.h: at least 8 samples of each way before any choice, and the
# way in use is never beaten by more than its 15% margin (plus rounding).
assert s["samples_zstd"] >= 8 and s["samples_raw"] >= 8, "not measured"
assert z > 0 and r > 0, "no averages"
assert s["compress_probes"] > 0, "no probes"
if s["compress_asking"]:
    assert z * 1.151 >= r, "asking although raw is faster"
else:
    assert r * 1.151 >= z, "not asking although zstd is faster"
print("auto: zstd %.0f MiB/s (%d), raw %.0f MiB/s (%d), asking %s, %d switches"
      % (z / 2**20, s["samples_zstd"], r / 2**20, s["samples_raw"],
         s["compress_asking"], s["compress_switches"]))
PY
unmount "$T/mnt"

# 2. on: compressed, well below the data bytes.
hydrate --compress=on
[ "$(st compress)" = on ] && [ "$(st compress_asking)" = True ] || fail "on: $(cat "$T/status.json")"
[ "$(st samples_raw)" = 0 ] || fail "on: raw samples"
[ "$sent" -lt $((data * 3 / 4)) ] || fail "on: the server sent $sent bytes for $data"
unmount "$T/mnt"

# 3. off, and its alias --no-compress: the data bytes as they are.
for opt in --compress=off --no-compress; do
	hydrate "$opt"
	[ "$(st compress)" = off ] && [ "$(st compress_asking)" = False ] || fail "$opt: $(cat "$T/status.json")"
	[ "$(st samples_zstd)" = 0 ] || fail "$opt: zstd samples"
	[ "$sent" -ge "$data" ] && [ "$sent" -le $((data + data / 20)) ] ||
		fail "$opt: the server sent $sent bytes for $data"
	unmount "$T/mnt"
done

# 4. Bad values: a usage error (2) that names the option, no mount.
for bad in --compress=fast --compress= --compress=ON --compress; do
	rc=0
	"$VMFERRY" mount -f "$SERVER_URL/text" "$T/mnt" --cache "$T/cache" \
		"${MOUNT_KEY[@]}" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		"$bad" >"$T/bad.out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || fail "mount $bad: exit $rc: $(cat "$T/bad.out")"
	grep -q -- '--compress' "$T/bad.out" || fail "mount $bad: $(cat "$T/bad.out")"
	rc=0
	"$VMFERRY" run --local "$SERVER_URL/text" "$bad" >"$T/bad.out" 2>&1 </dev/null || rc=$?
	[ "$rc" = 2 ] || fail "run $bad: exit $rc: $(cat "$T/bad.out")"
	grep -q -- '--compress' "$T/bad.out" || fail "run $bad: $(cat "$T/bad.out")"
done
grep -q 'auto, on or off' <("$VMFERRY" mount -f x "$T/mnt" --compress=fast 2>&1) ||
	fail "the error does not say the values"
! mountpoint -q "$T/mnt" || fail "mounted after a bad option"
