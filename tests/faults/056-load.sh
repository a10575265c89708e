#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Load: one server on loopback; R clients hydrate the same image at once
# (cold, --read-only, separate caches, each reading the whole image
# while its hydration runs) and W clients each commit changes to their
# own image in a loop (random writes checked against a model by
# tests/helpers/model-driver, then `vmferry sync`).  Checks: every
# reader's sha256 equals the image's; every sync made exactly one new
# version (the version numbers it reports and the server's history
# agree); a fresh client reading each image's newest version sees the
# writer's model; the server's peak RSS stays under a bound.  Reports
# the peak RSS, the clients' RSS and the bytes served per second.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 sha256sum
DRIVER="$BUILD/tests/helpers/model-driver"
[ -x "$DRIVER" ] || fail "$DRIVER not built"

seed=${VMFERRY_SEED:-$(((RANDOM << 15 | RANDOM) % 1000000000))}
echo "seed $seed (replay with VMFERRY_SEED=$seed)"
readers=$(faults_count 6 32)
writers=$(faults_count 2 8)
rounds=$(faults_count 3 10)              # syncs per writer
ops=$(faults_count 200 2000)             # driver operations per round
size=$(($(faults_count 8 256) * 1048576 + 4321))
wsize=$(($(faults_count 4 16) * 1048576))
rss_bound_kb=$((512 * 1024))

# All clients share 127.0.0.1: lift the per-address connection limit
# that would otherwise make them queue for connections.
start_server "$T/srv" --max-connections-per-address 1000
make_image "$T/data/shared.raw" "$size" "$seed"
import_image shared "$T/data/shared.raw"
want=$(sha256sum <"$T/data/shared.raw" | cut -d' ' -f1)
for ((w = 0; w < writers; w++)); do
	make_image "$T/data/w$w.raw" "$wsize" "$((seed + w + 1))"
	import_image "w$w" "$T/data/w$w.raw"
	cp "$T/data/w$w.raw" "$T/data/w$w.model"
done

# The server's VmRSS and VmHWM, sampled every 0.2 s.
(
	while kill -0 "$SERVER_PID" 2>/dev/null; do
		awk '/^VmRSS|^VmHWM/ {printf "%s %s ", $1, $2} END {print ""}' \
			"/proc/$SERVER_PID/status" 2>/dev/null || break
		sleep 0.2
	done
) >"$T/logs/server-rss.log" &
sampler=$!
cleanup_fn "kill $sampler 2>/dev/null"

client_mount() { # client_mount DIR URL [options]
	local d=$1 url=$2
	shift 2
	mkdir -p "$d/mnt"
	"$VMFERRY" mount "$url" "$d/mnt" --cache "$d/cache" "${MOUNT_KEY[@]}" \
		--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		--log "$d/mount.log" "$@" >"$d/mount.out" 2>&1
}
client_rss() { # the summed VmRSS (kB) of the mount daemons under $T
	local p sum=0 kb
	for p in /proc/[0-9]*; do
		grep -qaF -- "$T/" "$p/cmdline" 2>/dev/null || continue
		grep -qa -- "mount" "$p/cmdline" 2>/dev/null || continue
		kb=$(awk '/^VmRSS/ {print $2}' "$p/status" 2>/dev/null) || continue
		sum=$((sum + ${kb:-0}))
	done
	echo "$sum"
}

# Writers: rounds of random writes (checked by the driver), then a
# sync that must say "version N" with N one more than before.
writer() {
	local w=$1 d="$T/w$1" r out v expect=1
	client_mount "$d" "$SERVER_URL/w$w" --sync-interval 0 ||
		{ echo "writer $w: mount failed"; return 1; }
	for ((r = 0; r < rounds; r++)); do
		"$DRIVER" "$d/mnt/w$w.img" "$T/data/w$w.model" \
			"$((seed * 100 + w * 10 + r))" "$ops" >"$d/driver-$r.out" 2>&1 ||
			{ echo "writer $w: driver failed"; cat "$d/driver-$r.out"; return 1; }
		grep -q ' wrong=0 ' "$d/driver-$r.out" ||
			{ echo "writer $w: wrong bytes"; cat "$d/driver-$r.out"; return 1; }
		out=$("$VMFERRY" sync "$d/mnt" 2>&1) || { echo "writer $w: sync: $out"; return 1; }
		v=$(echo "$out" | sed -n 's/.*version \([0-9]*\).*/\1/p' | head -1)
		expect=$((expect + 1))
		[ "$v" = "$expect" ] || { echo "writer $w: sync said '$out', want version $expect"; return 1; }
		echo "$v" >>"$d/synced"
	done
	"$VMFERRY" umount "$d/mnt" >"$d/umount.out" 2>&1 ||
		{ echo "writer $w: umount failed"; return 1; }
}

# Mounts happen in background jobs: their unmount hooks go here, in the
# test's own shell.
for ((i = 0; i < readers; i++)); do
	cleanup_fn "fusermount3 -uz $T/r$i/mnt 2>/dev/null"
done
for ((w = 0; w < writers; w++)); do
	cleanup_fn "fusermount3 -uz $T/w$w/mnt 2>/dev/null"
	cleanup_fn "fusermount3 -uz $T/f$w/mnt 2>/dev/null"
done

bytes0=$(server_stat bytes_sent)
start=$(date +%s.%N)
# The first mount creates the key file; the others start together.
pids=()
for ((i = 0; i < readers; i++)); do
	client_mount "$T/r$i" "$SERVER_URL/shared" --read-only &
	pids+=($!)
	[ "$i" -gt 0 ] || wait "${pids[0]}" || fail "reader 0: mount"
done
for ((w = 0; w < writers; w++)); do
	writer "$w" >"$T/logs/writer-$w.log" 2>&1 &
	wpids[w]=$!
done
for ((i = 1; i < readers; i++)); do
	wait "${pids[$i]}" || fail "reader $i: mount: $(cat "$T/r$i/mount.out")"
done
# Every reader reads the whole image while its hydration runs.
for ((i = 0; i < readers; i++)); do
	sha256sum <"$T/r$i/mnt/shared.img" | cut -d' ' -f1 >"$T/r$i/sha" &
	pids[i]=$!
done
peak_clients=0
while :; do
	running=0
	for ((i = 0; i < readers; i++)); do
		kill -0 "${pids[$i]}" 2>/dev/null && running=1
	done
	c=$(client_rss)
	[ "$c" -le "$peak_clients" ] || peak_clients=$c
	[ "$running" = 1 ] || break
	sleep 1
done
bad=0
for ((i = 0; i < readers; i++)); do
	wait "${pids[$i]}" || true
	got=$(cat "$T/r$i/sha")
	[ "$got" = "$want" ] || { echo "reader $i: sha256 $got, want $want"; bad=$((bad + 1)); }
done
# Hydration completes on every reader.
for ((i = 0; i < readers; i++)); do
	for ((t = 0; t < 600; t++)); do
		st=$("$VMFERRY" status --json "$T/r$i/mnt" |
			python3 -c 'import json,sys; print(json.load(sys.stdin)["complete"])')
		[ "$st" = True ] && break
		sleep 0.2
	done
	[ "$st" = True ] || fail "reader $i: hydration not complete"
done
secs=$(echo "$(date +%s.%N) - $start" | bc)
bytes=$(($(server_stat bytes_sent) - bytes0))
wfail=0
for ((w = 0; w < writers; w++)); do
	wait "${wpids[$w]}" || { wfail=1; cat "$T/logs/writer-$w.log"; }
done
[ "$wfail" = 0 ] || fail "a writer failed"
end=$(date +%s.%N)
for ((i = 0; i < readers; i++)); do
	"$VMFERRY" umount "$T/r$i/mnt" >/dev/null || fail "reader $i: umount"
done
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

# Each commit landed exactly once: versions 1 (import) + one per sync;
# and the newest version is the writer's model, byte for byte.
lost=0
commits=0
for ((w = 0; w < writers; w++)); do
	n=$("$VMFERRY_SERVER" versions "$T/srv" "w$w" | grep -c '^ *[0-9]') || true
	s=$(wc -l <"$T/w$w/synced")
	commits=$((commits + s))
	echo "writer $w: $s syncs, $n versions on the server"
	[ "$n" = $((s + 1)) ] || { echo "writer $w: $n versions for $s syncs + import"; lost=$((lost + 1)); }
	mkdir -p "$T/f$w"
	client_mount "$T/f$w" "$SERVER_URL/w$w" --read-only || fail "fresh mount w$w"
	cmp "$T/f$w/mnt/w$w.img" "$T/data/w$w.model" ||
		{ echo "writer $w: the server's newest version differs from the model"; lost=$((lost + 1)); }
	"$VMFERRY" umount "$T/f$w/mnt" >/dev/null || fail "fresh umount w$w"
done

peak=$(awk '{for (i = 1; i < NF; i++) if ($i == "VmHWM:" && $(i+1) > m) m = $(i+1)} END {print m + 0}' \
	"$T/logs/server-rss.log")
rss_end=$(tail -n 2 "$T/logs/server-rss.log" | awk '{for (i = 1; i < NF; i++) if ($i == "VmRSS:") v = $(i+1)} END {print v + 0}')
echo "readers $readers x $((size / 1048576)) MiB, writers $writers x $rounds syncs of $ops operations"
echo "hydration: $((bytes / 1048576)) MiB served in ${secs}s:" \
	"$(echo "$bytes / $secs / 1048576" | bc) MiB/s"
echo "server peak RSS (VmHWM) ${peak} kB, last VmRSS ${rss_end} kB; clients' summed RSS peak ${peak_clients} kB" \
	"($((peak_clients / (readers + writers))) kB each)"
echo "whole run $(echo "$end - $start" | bc)s"
[ "$peak" -gt 0 ] || fail "no RSS samples"
[ "$peak" -le "$rss_bound_kb" ] || fail "server RSS peaked at $peak kB (bound $rss_bound_kb kB)"
fault_result load "$((readers + writers))" "$commits" "$lost" "$bad"
