#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Client crashes (issue 5): the verifier workload writes checksummed
# records through the mount and fsyncs; the mount daemon is killed with
# SIGKILL at a random moment: mid-write or mid-fsync, mid-upload (a
# `vmferry sync`, or a periodic sync every second) or mid-hydration (a
# fresh cache, hydration slowed down).  After each kill: the LMDB
# environment opens (mdb_stat), the server's newest version read by a
# fresh read-only client is a state the client had at some point, the
# remount holds every acknowledged record, and the next sync succeeds.
# docs/faults.md, "Client crashes".
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/crash-lib.sh"
requires_fuse
requires python3 mdb_stat

n=$(faults_count 4 200)
seed=${VMFERRY_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
echo "seed $seed"
RANDOM=$seed
size=$((8 * 1024 * 1024))

start_server "$T/srv"
make_image "$T/data/base.img" "$size" "$seed"
import_image disk "$T/data/base.img"

modes=(write periodic sync hydrate)
cycle=0
for ((cycle = 1; cycle <= n; cycle++)); do
	mode=${modes[RANDOM % 4]}
	cycle_seed=$((seed * 1000 + cycle))
	opts=(--sync-interval 0)
	case $mode in
	periodic) opts=(--sync-interval 1) ;;
	hydrate)
		# Everything is synced: a fresh cache starts hydrating.
		rm -rf "$T/cache"
		opts=(--sync-interval 1 --max-rate 2M)
		;;
	esac
	log="$T/data/log.$cycle"
	mount_image "$SERVER_URL/disk" "$T/mnt" "${opts[@]}"
	python3 "$VERIFIER" write "$T/mnt/disk.img" "$log" "$cycle_seed" &
	wpid=$!
	# Long enough, with a sync every second, for commits to happen
	# while the workload runs.
	case $mode in
	write) delay=$(printf '%d.%03d' $((RANDOM % 2)) $((RANDOM % 1000))) ;;
	*) delay=$(printf '%d.%03d' $((1 + RANDOM % 3)) $((RANDOM % 1000))) ;;
	esac
	sleep "$delay"
	spid=
	if [ "$mode" = sync ]; then
		"$VMFERRY" sync "$T/mnt" >>"$T/logs/sync.log" 2>&1 &
		spid=$!
		sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
	fi
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	MOUNT_PID=
	wait "$wpid" || fail "cycle $cycle: the workload failed"
	[ -z "$spid" ] || wait "$spid" 2>/dev/null || true
	fusermount3 -uz "$T/mnt"
	echo "cycle $cycle: $mode, killed after ${delay}s," \
		"$(grep -c '^W' "$log") records written, $(grep -c '^A' "$log") fsyncs"
	cache=$(ls -d "$T"/cache/*/disk)
	mdb_stat -e "$cache" >/dev/null || fail "cycle $cycle: LMDB environment does not open"

	# The server: some point of the client (and without any sync in
	# this cycle, exactly where the last cycle left it).
	fresh_read "$T/data/server.img"
	if [ "$mode" = write ]; then
		check "$log" "$T/data/server.img" server 0
	else
		check "$log" "$T/data/server.img" server
	fi

	# The remount: every acknowledged record, the next sync succeeds.
	after_crash "$log" "crash"
	[ "$bad" = 0 ] || break
done
[ "$bad" = 0 ] && cycle=$((cycle - 1))

finish client-crash
