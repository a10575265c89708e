#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Network faults (issue 5): a client mounted through a fault-injecting
# TLS proxy (tests/helpers/faultproxy.py) never returns wrong bytes to a
# reader, recovers by itself once the fault clears (reads succeed, and
# hydration completes), and write-back under faults on its uploads and
# commits (a dropped answer after the server committed included) commits
# each sync point exactly once, with the right bytes.  docs/faults.md,
# "Network faults".
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/helpers/faultproxy.sh"
requires_fuse
requires python3 openssl curl

seed=${VMFERRY_SEED:-$RANDOM}
echo "seed $seed"
reads=$(faults_count 12 400)     # reads per fault kind, under the fault
rounds=$(faults_count 5 200)     # write-back rounds (one sync point each)
mixreads=$(faults_count 24 3000) # reads under the mixed random schedule
stall=$(faults_count 25 35)      # stall length: past the reads' --io-timeout 3
slowest=10                       # a read may take at most this many seconds
size=$(faults_count $((1024 * 1024)) $((16 * 1024 * 1024)))
maxn=$(faults_count 1 5)        # write faults hit the next 1..maxn requests

# Every version kept (retention drops all but the last 10 by default),
# so that each sync point can be checked.
start_server "$T/srv" --keep-versions 100000
# Mostly data blocks (make_image's zero runs can cover a small image),
# some zero blocks and a short last block.
python3 - "$T/data/img.raw" "$size" "$seed" <<'PY'
import random, sys
rng = random.Random(int(sys.argv[3]))
with open(sys.argv[1], "wb") as f:
    for i in range(int(sys.argv[2]) // 65536):
        f.write(bytes(65536) if rng.random() < 0.2 else rng.randbytes(65536))
    f.write(rng.randbytes(1000))
PY
import_image disk "$T/data/img.raw"

start_faultproxy "$seed"
ctl() { proxy_ctl "$1"; }

checked=0 writes=0 wrong=0 lost=0 cycles=0 eio=0

# reader N SEED EIO_OK: N reads (random offsets and lengths, some
# sequential runs) through the mount with O_DIRECT, each compared with
# the reference; prints "checked eio wrong".  EIO is allowed only when
# EIO_OK is 1; and the slowest read's seconds.
reader() {
	python3 - "$T/mnt/disk.img" "$T/data/img.raw" "$@" <<'PY'
import mmap, os, random, sys, time
path, ref_path, n, seed, eio_ok = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
ref = open(ref_path, "rb").read()
rng = random.Random(seed)
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, 1 << 20)
checked = eio = wrong = 0
slowest = 0.0
off = 0
for i in range(n):
    ln = rng.choice([4096, 65536, 131072, 1 << 20]) // 4096 * 4096
    if rng.random() < 0.5 or off + ln > len(ref):
        off = rng.randrange(0, (len(ref) - ln) // 4096 + 1) * 4096
    t0 = time.monotonic()
    try:
        got = os.preadv(fd, [memoryview(buf)[:ln]], off)
    except OSError as e:
        slowest = max(slowest, time.monotonic() - t0)
        if e.errno == 5 and eio_ok:
            eio += 1
            off += ln
            continue
        print("read %d+%d: %s" % (off, ln, e), file=sys.stderr)
        sys.exit(1)
    slowest = max(slowest, time.monotonic() - t0)
    if buf[:got] != ref[off:off + got] or got != min(ln, len(ref) - off):
        wrong += 1
        print("WRONG bytes at %d+%d" % (off, ln), file=sys.stderr)
    checked += 1
    off += ln
print(checked, eio, wrong, "%.1f" % slowest)
PY
}

# read_round NAME READS: under the fault now set, reads (EIO allowed);
# then heal, reads again (no EIO), hydration completes, and the whole
# file equals the reference.
read_round() {
	local name=$1 n=$2 out c e w s c2 e2 w2 s2
	out=$(reader "$n" "$((seed + cycles))" 1) || fail "$name: reader"
	read -r c e w s <<<"$out"
	ctl clear
	out=$(reader "$n" "$((seed + cycles + 7))" 0) || fail "$name: reads after healing"
	read -r c2 e2 w2 s2 <<<"$out"
	# A stalled server must not hold a reader much past its timeout.
	python3 -c "import sys; sys.exit(max($s, $s2) >= $slowest)" ||
		fail "$name: a read took ${s}s under the fault (limit ${slowest}s)"
	wait_hydrated 120
	cmp "$T/mnt/disk.img" "$T/data/img.raw" || fail "$name: hydrated copy differs"
	checked=$((checked + c + c2 + 1)) wrong=$((wrong + w + w2)) eio=$((eio + e + e2))
	cycles=$((cycles + 1))
	echo "$name: $c reads checked under the fault ($e EIO, slowest ${s}s), $c2 after, $((w + w2)) wrong (${SECONDS}s)"
}

fresh_mount() { # through the proxy, an empty cache
	rm -rf "$T/cache"
	proxy_mount "$PROXY_URL/disk" "$T/mnt" "$@"
}

# 1. Reads: each fault kind in turn, on every version GET (data and
# manifest).
# The fault is on before the mount, so that hydration (paced, so that
# the reader's misses meet it) fetches under it too.
for kind in drop stall 500 503 truncate flip range range-bytes drop-request; do
	p=0.5
	ctl "set?kind=$kind&p=$p&stall=$stall&match=^GET%20.*/data$"
	fresh_mount --read-only --io-timeout 3 --readahead 128K --max-rate 1M
	read_round "$kind" "$reads"
	unmount "$T/mnt"
done
# And a mixed random schedule: faults come and go while reading.
ctl "set?kind=mix&p=$(faults_count 0.3 0.1)&stall=$stall&match=^GET%20.*/data$"
fresh_mount --read-only --io-timeout 3 --max-rate 1M
read_round mix "$mixreads"
unmount "$T/mnt"

# 2. Write-back under faults on uploads and commits.
cp "$T/data/img.raw" "$T/data/model.raw"
fresh_mount --sync-interval 0 --io-timeout 5
wait_hydrated 120
wfaults=(
	"drop-after&match=^POST%20.*/versions$"
	"drop&match=^POST%20.*/versions$"
	"drop-request&match=^POST%20.*/versions$"
	"truncate&match=^POST%20.*/versions$"
	"flip&match=^POST%20.*/versions$"
	"500&match=^POST%20.*/versions$"
	"503&match=^PUT%20/v1/blocks/"
	"drop&match=^PUT%20/v1/blocks/"
	"flip&match=^POST%20/v1/blocks/missing"
	"drop-after&match=^POST"
	"stall&match=^POST%20.*/versions$"
	"mix&match=^(POST|PUT)%20"
)
declare -a model_sums
for ((r = 1; r <= rounds; r++)); do
	nrec=$(python3 - "$T/mnt/disk.img" "$T/data/model.raw" "$((seed * 1000 + r))" <<'PY'

import os, random, sys
rng = random.Random(int(sys.argv[3]))
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[2], os.O_RDWR)
size = os.path.getsize(sys.argv[2])
for i in range(rng.randint(1, 6)):
    d = rng.randbytes(rng.choice([100, 4096, 65536, 100000]))
    off = rng.randrange(0, size - len(d))
    os.pwrite(a, d, off)
    os.pwrite(b, d, off)
os.fsync(a)
print(i + 1)
PY
	) || fail "round $r: writes"
	writes=$((writes + nrec))
	f=${wfaults[$(((r - 1) % ${#wfaults[@]}))]}
	n=$((1 + (seed + r) % maxn))
	ctl "set?kind=${f%%&*}&n=$n&stall=$stall&${f#*&}"
	"$VMFERRY" sync "$T/mnt" >>"$T/logs/sync.log" 2>&1 || echo "round $r: sync under $f (n=$n) failed" >>"$T/logs/sync.log"
	ctl clear
	ok=0
	for _ in 1 2 3 4 5; do
		if "$VMFERRY" sync "$T/mnt" >>"$T/logs/sync.log" 2>&1; then
			ok=1
			break
		fi
		sleep 1
	done
	[ "$ok" = 1 ] || fail "round $r: sync does not recover after the fault ($f)"
	model_sums[r]=$(sha256sum <"$T/data/model.raw" | cut -d' ' -f1)
	cycles=$((cycles + 1))
done
[ "$(mount_status blocks_dirty)" = 0 ] || fail "changes left unsynced"
unmount "$T/mnt"
echo "write-back: $rounds sync points, $writes acknowledged writes (${SECONDS}s)"

# Each sync point is one version, exactly once, with the model's bytes.
scurl "$SERVER_URL/v1/images/disk/versions" >"$T/data/versions.json"
nv=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["versions"]))' "$T/data/versions.json")
[ "$nv" = $((rounds + 1)) ] || fail "$nv versions for $rounds sync points: $(cat "$T/data/versions.json")"
for ((r = 1; r <= rounds; r++)); do
	got=$(scurl "$SERVER_URL/v1/images/disk/versions/$((r + 1))/data" | sha256sum | cut -d' ' -f1)
	if [ "$got" != "${model_sums[r]}" ]; then
		echo "version $((r + 1)) is not the state of sync point $r" >&2
		lost=$((lost + 1))
	fi
done

# A fresh client, straight to the server, reads exactly the client's state.
mkdir -p "$T/fresh"
"$VMFERRY" mount "$SERVER_URL/disk" "$T/fresh" --cache "$T/fresh-cache" \
	--key-file "$T/user.key" --cacert "$SRV_CACERT" \
	--token-file "$ADMIN_TOKEN_FILE" --read-only || fail "fresh mount"
cmp "$T/fresh/disk.img" "$T/data/model.raw" || lost=$((lost + 1))
"$VMFERRY" umount "$T/fresh"

proxy_ctl stats
echo "reads checked $checked (EIO under faults: $eio), write rounds $writes"
fault_result network-faults "$cycles" "$((checked + writes))" "$lost" "$wrong"
