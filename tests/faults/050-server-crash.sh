#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Server crashes: SIGKILL vmferry-server at a random moment during an
# import (a separate process, killed too), a mount's sync (upload and
# commit), a `vmferry publish`, or a gc (killed too), then restart it on
# the same port.  After each restart: fsck finds no missing or corrupt
# block and no bad file; every image's current version holds exactly the
# bytes of the model (the last import or publish that committed, the
# mount's synced writes); an acknowledged publish or sync is there; the
# mount's retried sync succeeds and adds exactly one version.  At the
# end fsck --repair removes only leftovers: fsck is clean and every
# version still reads back.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

n=$(faults_count 6 200)
seed=${VMFERRY_SEED:-$RANDOM}
echo "seed $seed cycles $n"
RANDOM=$seed
SIZE=$((4 * 1024 * 1024))
S=$T/srv
start_server "$S" --keep-versions 4
port=$SERVER_PORT
make_image "$T/data/disk.model" $SIZE "$seed"
import_image disk "$T/data/disk.model"
make_image "$T/data/imp.model" $SIZE $((seed + 1))
import_image imp "$T/data/imp.model"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0

acked=0 lost=0 wrong=0 leftovers=0
current() { scurl "$SERVER_URL/v1/images/$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
crash_server() {
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}
restart_server() {
	start_server "$S" --keep-versions 4 --listen "127.0.0.1:$port"
	[ "$SERVER_PORT" = "$port" ] || fail "restarted on port $SERVER_PORT, not $port"
}
# same_as IMAGE VERSION MODEL: the version's bytes are the model's.
same_as() {
	scurl -f "$SERVER_URL/v1/images/$1/versions/$2/data" -o "$T/data/got" ||
		fail "reading $1 version $2"
	cmp -s "$T/data/got" "$3"
}
check_store() {
	"$VMFERRY_SERVER" fsck "$S" >"$T/logs/fsck.out" 2>&1 || true
	grep -q " 0 missing, 0 corrupt, 0 bad files" "$T/logs/fsck.out" ||
		fail "cycle $1: store damaged: $(cat "$T/logs/fsck.out")"
	leftovers=$((leftovers + $(sed -n 's/^leftovers: \([0-9]*\) manifests.*/\1/p' "$T/logs/fsck.out")))
}
# write_some: random writes through the mount, fsynced (acknowledged),
# mirrored into the model.
write_some() {
	python3 - "$T/mnt/disk.img" "$T/data/disk.model" "$1" <<'PY' || fail "writing through the mount"
import os, random, sys
rng = random.Random(int(sys.argv[3]))
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[2], os.O_RDWR)
size = os.path.getsize(sys.argv[2])
for i in range(rng.randrange(1, 8)):
    d = rng.randbytes(rng.choice([512, 4096, 65536, 200000]))
    off = rng.randrange(0, size - len(d))
    os.pwrite(a, d, off)
    os.pwrite(b, d, off)
os.fsync(a)
PY
}
delay() { sleep "0.$(printf '%03d' $((RANDOM % ${1:-300})))"; }

kinds=(import sync publish gc)
for ((c = 1; c <= n; c++)); do
	kind=${kinds[$(((c - 1) % 4))]}
	[ "$c" -le 4 ] || kind=${kinds[$((RANDOM % 4))]}
	case $kind in
	import | publish)
		before=$(current imp)
		make_image "$T/data/new.raw" $SIZE $((seed * 1000 + c))
		if [ "$kind" = import ]; then
			"$VMFERRY_SERVER" import "$S" imp "$T/data/new.raw" >"$T/logs/op.log" 2>&1 &
		else
			"$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
				"$SERVER_URL/imp" "$T/data/new.raw" >"$T/logs/op.log" 2>&1 &
		fi
		op=$!
		delay 250
		crash_server
		if [ "$kind" = import ]; then kill -9 "$op" 2>/dev/null || true; fi
		restart_server
		st=0
		wait "$op" || st=$?
		after=$(current imp)
		if [ "$st" = 0 ]; then
			acked=$((acked + 1))
			grep -q "version $after" "$T/logs/op.log" || {
				lost=$((lost + 1))
				echo "cycle $c: $kind said '$(cat "$T/logs/op.log")' but current is $after"
			}
		fi
		if [ "$after" = $((before + 1)) ]; then
			cp "$T/data/new.raw" "$T/data/imp.model"
		elif [ "$after" != "$before" ]; then
			fail "cycle $c: $kind moved imp from $before to $after"
		fi
		same_as imp "$after" "$T/data/imp.model" || {
			wrong=$((wrong + 1))
			echo "cycle $c: imp version $after differs from the model"
		}
		;;
	sync)
		before=$(current disk)
		write_some $((seed * 1000 + c))
		"$VMFERRY" sync "$T/mnt" >"$T/logs/op.log" 2>&1 &
		op=$!
		delay 150
		crash_server
		restart_server
		wait "$op" || true
		# The retry: succeeds, and the version count went up by one.
		"$VMFERRY" sync "$T/mnt" >"$T/logs/retry.log" 2>&1 ||
			fail "cycle $c: the sync after the restart failed: $(cat "$T/logs/retry.log")"
		after=$(current disk)
		[ "$after" = $((before + 1)) ] ||
			fail "cycle $c: sync point moved disk from $before to $after"
		acked=$((acked + 1))
		same_as disk "$after" "$T/data/disk.model" || {
			lost=$((lost + 1))
			echo "cycle $c: disk version $after lacks acknowledged writes"
		}
		;;
	gc)
		"$VMFERRY_SERVER" gc "$S" --keep-versions 2 --grace 0 >"$T/logs/op.log" 2>&1 &
		op=$!
		# The first gc cycle lets gc finish (its sweep is then
		# checked every run); the others crash it anywhere.
		if [ "$c" -le 4 ]; then wait "$op" || fail "gc: $(cat "$T/logs/op.log")"; else delay 150; fi
		crash_server
		kill -9 "$op" 2>/dev/null || true
		wait "$op" 2>/dev/null || true
		restart_server
		for i in disk imp; do
			same_as "$i" "$(current "$i")" "$T/data/$i.model" || {
				wrong=$((wrong + 1))
				echo "cycle $c: $i differs from the model after gc"
			}
		done
		;;
	esac
	check_store "$c ($kind)"
	echo "cycle $c: $kind ok"
done

# Repair removes the leftovers only; everything still reads back.
"$VMFERRY_SERVER" fsck "$S" --repair --grace 0 >"$T/logs/repair.out" 2>&1 ||
	fail "fsck --repair: $(cat "$T/logs/repair.out")"
cat "$T/logs/repair.out"
"$VMFERRY_SERVER" fsck "$S" >"$T/logs/fsck.out" 2>&1 || fail "fsck after repair: $(cat "$T/logs/fsck.out")"
grep -q "leftovers: 0 manifests above current, 0 unreferenced blocks" "$T/logs/fsck.out" ||
	fail "leftovers remain: $(cat "$T/logs/fsck.out")"
for i in disk imp; do
	same_as "$i" "$(current "$i")" "$T/data/$i.model" || fail "$i differs from the model after repair"
done
cmp "$T/mnt/disk.img" "$T/data/disk.model" || fail "the mount differs from the model"
write_some $((seed * 1000 + 999))
"$VMFERRY" sync "$T/mnt" >"$T/logs/op.log" 2>&1 || fail "sync after repair: $(cat "$T/logs/op.log")"
same_as disk "$(current disk)" "$T/data/disk.model" || fail "the last sync lost writes"
unmount "$T/mnt"
echo "crash leftovers seen: $leftovers manifests above current"
fault_result server-crash "$n" "$acked" "$lost" "$wrong"
