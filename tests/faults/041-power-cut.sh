#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Power cuts (issue 5): the client's cache lives on powercut (a FUSE
# passthrough in tests/helpers/powercut.c that rolls every file back to
# its last fsync when it is unmounted).  The verifier workload writes
# checksummed records through the mount and fsyncs; at a random moment
# (mid-write, mid-fsync, mid-upload, mid-hydration) the power goes: the
# mount daemon gets SIGKILL, the layer drops what was not fsynced and
# comes back.  Then: the LMDB environment opens (mdb_stat), the remount
# holds every acknowledged record, and the next sync succeeds.
# docs/faults.md, "Power cuts".
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/crash-lib.sh"
requires_fuse
requires python3 mdb_stat

n=$(faults_count 4 100)
seed=${VMFERRY_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "seed $seed"
RANDOM=$seed
size=$((8 * 1024 * 1024))
POWERCUT="$BUILD/tests/helpers/powercut"

# The layer: $T/pc mirrors $T/pcback; the cache ($T/cache) lives in it.
LAYER_PID=
start_layer() {
	"$POWERCUT" "$T/pcback" "$T/pc" 2>>"$T/logs/powercut.log" &
	LAYER_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$T/pc" && return 0
		kill -0 "$LAYER_PID" 2>/dev/null || fail "powercut exited"
		sleep 0.1
	done
	fail "powercut did not mount"
}
# The power cut itself (and the layer's end): unmount, it rolls back.
stop_layer() {
	[ -n "$LAYER_PID" ] || return 0
	fusermount3 -u "$T/pc" || fusermount3 -uz "$T/pc"
	local st=0
	wait "$LAYER_PID" || st=$?
	LAYER_PID=
	if [ "$st" != 0 ]; then
		echo "FAIL: powercut exited with status $st" >&2
		_daemon_failed=1
		return 1
	fi
}
mkdir -p "$T/pcback/cache" "$T/pc"
start_layer
cleanup_fn stop_layer
ln -s "$T/pc/cache" "$T/cache"

start_server "$T/srv"
make_image "$T/data/base.img" "$size" "$seed"
import_image disk "$T/data/base.img"

modes=(write periodic sync hydrate)
rolled=0
for ((cycle = 1; cycle <= n; cycle++)); do
	mode=${modes[RANDOM % 4]}
	cycle_seed=$((seed * 1000 + cycle))
	opts=(--sync-interval 0)
	case $mode in
	periodic) opts=(--sync-interval 1) ;;
	hydrate)
		# Everything is synced: a fresh cache starts hydrating.
		rm -rf "$T/pc/cache/"*
		opts=(--sync-interval 1 --max-rate 2M)
		;;
	esac
	log="$T/data/log.$cycle"
	mount_image "$SERVER_URL/disk" "$T/mnt" "${opts[@]}"
	python3 "$VERIFIER" write "$T/mnt/disk.img" "$log" "$cycle_seed" &
	wpid=$!
	delay=$(printf '%d.%03d' $((RANDOM % 3)) $((RANDOM % 1000)))
	sleep "$delay"
	spid=
	if [ "$mode" = sync ]; then
		"$VMFERRY" sync "$T/mnt" >>"$T/logs/sync.log" 2>&1 &
		spid=$!
		sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
	fi
	# The power goes: the daemon dies, and so does everything the
	# cache's files hold that was not fsynced.
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	MOUNT_PID=
	wait "$wpid" || fail "cycle $cycle: the workload failed"
	[ -z "$spid" ] || wait "$spid" 2>/dev/null || true
	fusermount3 -uz "$T/mnt"
	stop_layer
	cut=$(tail -n 1 "$T/logs/powercut.log")
	case $cut in
	*" 0 files rolled back"*) ;;
	*) rolled=$((rolled + 1)) ;;
	esac
	start_layer
	echo "cycle $cycle: $mode, cut after ${delay}s," \
		"$(grep -c '^W' "$log") records written, $(grep -c '^A' "$log") fsyncs; $cut"
	cache=$(ls -d "$T"/cache/*/disk)
	mdb_stat -e "$cache" >/dev/null || fail "cycle $cycle: LMDB environment does not open"

	after_crash "$log" "power cut"
	[ "$bad" = 0 ] || break
done
[ "$bad" = 0 ] && cycle=$((cycle - 1))
echo "$rolled of $cycle power cuts rolled unsynced writes back"

finish power-cut
