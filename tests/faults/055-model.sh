#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Against a model: a seeded random-operation driver
# (tests/helpers/model-driver.c) runs reads, writes, discards, fsyncs and
# `vmferry sync`s against the mount and against an in-memory model of the
# disk, comparing every byte every read returns.  Between runs of the
# driver this script remounts (keeping the cache, or cold), and publishes
# new versions on the server (import or `vmferry publish` of a changed
# image, with no unsynced changes on the client), after which the model
# takes the new image.  Mount options vary: hydration on or off, a
# write-back interval of 0, 1 or 3 s, --no-sync.  At the end a fresh
# client reads the server's newest version: it must equal the model.
# VMFERRY_SEED=N replays a run.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 cmp
DRIVER="$BUILD/tests/helpers/model-driver"
[ -x "$DRIVER" ] || fail "$DRIVER not built"

seed=${VMFERRY_SEED:-$(((RANDOM << 15 | RANDOM) % 1000000000))}
echo "seed $seed (replay with VMFERRY_SEED=$seed)"
RANDOM=$seed
total=$(faults_count 20000 1000000)
segments=$(faults_count 10 100)
size=$(($(faults_count 6 48) * 1024 * 1024 + 12345)) # not whole blocks
per=$((total / segments))

start_server "$T/srv"
make_image "$T/data/img.raw" "$size" "$seed"
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
MNT="$T/mnt"
IMG="$MNT/disk.img"

model_mount() {
	local opts=()
	case $((RANDOM % 3)) in
	0) opts+=(--no-hydrate) ;;
	1) opts+=(--max-rate 20M) ;;
	esac
	opts+=(--sync-interval "$(((RANDOM % 3) * (RANDOM % 3 + 1)))")
	if [ $((RANDOM % 4)) = 0 ]; then
		opts+=(--no-sync)
	fi
	echo "mount ${opts[*]}"
	mount_image "$SERVER_URL/disk" "$MNT" "${opts[@]}"
}

do_sync() {
	"$VMFERRY" sync "$MNT" >>"$T/logs/sync.log" 2>&1 || fail "vmferry sync"
}

# new_version: the server's next version is the model with some blocks
# changed (random bytes, zeros, a few bytes), published by import or by
# `vmferry publish`; the model takes it.
new_version() {
	python3 - "$T/data/model.raw" "$T/data/next.raw" "$RANDOM" <<'PY'
import random, sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
d = bytearray(open(src, "rb").read())
bs = 65536
for _ in range(rng.randrange(1, 20)):
    b = rng.randrange(0, (len(d) + bs - 1) // bs)
    kind = rng.randrange(3)
    off = b * bs
    n = min(bs, len(d) - off)
    if kind == 0:
        d[off:off + n] = rng.randbytes(n)
    elif kind == 1:
        d[off:off + n] = bytes(n)
    else:
        o = off + rng.randrange(n)
        k = min(rng.randrange(1, 100), len(d) - o)
        d[o:o + k] = rng.randbytes(k)
open(dst, "wb").write(d)
PY
	if [ $((RANDOM % 2)) = 0 ]; then
		echo "new version by import"
		import_image disk "$T/data/next.raw"
	else
		echo "new version by vmferry publish"
		"$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
			"$SERVER_URL/disk" "$T/data/next.raw" >>"$T/logs/publish.log" 2>&1 ||
			fail "vmferry publish"
	fi
	cp "$T/data/next.raw" "$T/data/model.raw"
}

declare -A sum=()
add_stats() { # add_stats "STATS k=v ..."
	local kv
	for kv in ${1#STATS }; do
		case $kv in
		secs=*) ;;
		*) sum[${kv%%=*}]=$((${sum[${kv%%=*}]:-0} + ${kv#*=})) ;;
		esac
	done
}

model_mount
verify=--verify
versions=0
remounts=0
cold=0
for ((s = 0; s < segments; s++)); do
	out=$("$DRIVER" $verify --sync "$VMFERRY sync $MNT >>$T/logs/sync.log 2>&1" \
		"$IMG" "$T/data/model.raw" "$((seed * 1000 + s))" "$per" 2>"$T/logs/driver-$s.err") ||
		{ cat "$T/logs/driver-$s.err"; fail "driver run $s"; }
	echo "run $s: $out"
	cat "$T/logs/driver-$s.err"
	add_stats "$out"
	[ "${sum[wrong]:-0}" = 0 ] || break
	verify=
	[ $((s + 1)) -lt "$segments" ] || break
	case $((RANDOM % 10)) in
	0 | 1 | 2 | 3) ;; # go on with the same mount
	4 | 5 | 6)
		echo "remount, keeping the cache"
		unmount "$MNT"
		remounts=$((remounts + 1))
		model_mount
		verify=--verify ;;
	7)
		echo "remount with a cold cache"
		do_sync
		unmount "$MNT"
		rm -rf "$T/cache"
		cold=$((cold + 1))
		model_mount
		verify=--verify ;;
	8 | 9)
		do_sync
		unmount "$MNT"
		new_version
		versions=$((versions + 1))
		model_mount
		verify=--verify ;;
	esac
done
do_sync
unmount "$MNT"

# A fresh client reads the server's newest version: the model, exactly.
mkdir -p "$T/fresh/mnt"
"$VMFERRY" mount "$SERVER_URL/disk" "$T/fresh/mnt" --cache "$T/fresh/cache" \
	--key-file "$T/user.key" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	--read-only --log "$T/logs/fresh.log" || fail "fresh mount"
lost=$(cmp -l "$T/fresh/mnt/disk.img" "$T/data/model.raw" 2>&1 | wc -l) || true
"$VMFERRY" umount "$T/fresh/mnt" >/dev/null || fail "fresh umount"

ops=${sum[ops]}
echo "ops $ops in ${SECONDS}s; reads ${sum[reads]} writes ${sum[writes]} zeroes ${sum[zeroes]}" \
	"fsyncs ${sum[fsyncs]} syncs ${sum[syncs]}; remounts $remounts, cold $cold, new versions $versions"
echo "read $((sum[bytes_read] / 1048576)) MiB, wrote $((sum[bytes_written] / 1048576)) MiB;" \
	"$((ops / (SECONDS > 0 ? SECONDS : 1))) ops/s overall"
fault_result model "$ops" "$((sum[writes] + sum[zeroes]))" "$lost" "${sum[wrong]}"
