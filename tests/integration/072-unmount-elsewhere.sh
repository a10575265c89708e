#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An unmount ends the mount even when a copy of it lives on in another
# mount namespace (a process started by `unshare -m`, `ip netns exec` or
# a container runtime while the mount existed keeps the FUSE connection
# open, and the daemon used to go on serving nobody, its final sync and
# lease release waiting for that process to end).  Checked: the daemon
# ends within seconds of `fusermount3 -u`, exits 0, makes the final sync
# (the server's new version is the model byte for byte) and releases the
# lease; the other namespace's copy stops working.  A lazy unmount of a
# file still open goes on serving it until it is closed.  An ordinary
# unmount says nothing about namespaces.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires unshare nsenter

start_server "$T/srv"
make_image "$T/data/img.raw" $((4 * 1024 * 1024)) 72
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
version() { scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'; }
mark() { # mark TEXT OFFSET: written through the mount (fsynced) and into the model
	printf '%s' "$1" | dd of="$T/mnt/disk.img" bs=1 seek="$2" conv=notrunc,fsync status=none ||
		fail "write $1"
	printf '%s' "$1" | dd of="$T/data/model.raw" bs=1 seek="$2" conv=notrunc status=none
}
HOLDER=
hold() { # a process in a private mount namespace holding a copy of the mount
	unshare --mount --propagation private sleep 600 &
	HOLDER=$!
	cleanup_fn "kill $HOLDER 2>/dev/null || true"
	for ((i = 0; i < 50; i++)); do
		grep -q " $T/mnt " "/proc/$HOLDER/mountinfo" 2>/dev/null && return 0
		sleep 0.1
	done
	fail "the holder's namespace has no copy of the mount"
}
MSG="another mount namespace still holds a copy"

# Ordinary unmount: nothing about namespaces.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
unmount "$T/mnt"
! grep -q "$MSG" "$T/logs/mount.log" || fail "an ordinary unmount was taken for one held elsewhere"

# Held elsewhere: the unmount still ends the daemon (unmount() fails
# after 30 s), with the final sync and the lease released.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
mark "written before an unmount held elsewhere" 1000000
before=$(version)
hold
s=$(date +%s.%N)
unmount "$T/mnt"
echo "# the daemon ended $(echo "$(date +%s.%N) - $s" | bc) s after the unmount"
grep -q "$MSG" "$T/logs/mount.log" || fail "no word of the copy: $(cat "$T/logs/mount.log")"
after=$(version)
[ "$after" = $((before + 1)) ] || fail "the final sync made version $after, want $((before + 1))"
cmp <(scurl "$SERVER_URL/v1/images/disk/versions/$after/data") "$T/data/model.raw" ||
	fail "version $after differs from the model"
grep -q "image disk: lease released" "$T/logs/server.log" || fail "the lease was not released"
out=$(nsenter -t "$HOLDER" -m stat "$T/mnt/disk.img" 2>&1) &&
	fail "the other namespace's copy still works: $out"
echo "$out" | grep -q "not connected" || fail "the other copy: $out, want 'not connected'"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true

# A lazy unmount of a disk still open (QEMU's, say) keeps serving it,
# held elsewhere or not, and ends once it is closed.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
hold
exec 3<"$T/mnt/disk.img"
fusermount3 -uz "$T/mnt" || fail "fusermount3 -uz"
sleep 4
kill -0 "$MOUNT_PID" 2>/dev/null || fail "the daemon ended with a file open"
cmp <(cat <&3) "$T/data/model.raw" || fail "the open file read wrong after the lazy unmount"
exec 3<&-
for ((i = 0; i < 100; i++)); do
	kill -0 "$MOUNT_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$MOUNT_PID" 2>/dev/null && fail "still running 10 s after the last file closed"
wait "$MOUNT_PID" || fail "vmferry mount exited with status $?"
MOUNT_PID=
grep -q "$MSG" "$T/logs/mount.log" || fail "no word of the copy after the lazy unmount"
