# SPDX-License-Identifier: MIT
# Shared by the crash tests 040-041 (source after ../lib.sh): the
# verifier workload (tests/helpers/verifier.py) and its counts.
#   fresh_read OUT [NAME]  the server's newest version of disk (or NAME),
#                          through a fresh read-only client, empty cache
#   remount MNT [opts]     mount_image, or 1 if the copy is refused
#   rescue OUT             what to do then (see below)
#   check LOG IMG MODE [P] run the checker (MODE local, server or exact;
#                          P: the point the server must be at), adding
#                          to acked, lost and wrong; sets bad=1 on a
#                          failure.  Needs base.img and cycle_seed.
VERIFIER="$TOP/tests/helpers/verifier.py"
cleanup_fn 'mountpoint -q "$T/fresh/mnt" && fusermount3 -u "$T/fresh/mnt"'

fresh_read() {
	rm -rf "$T/fresh"
	mkdir -p "$T/fresh/mnt"
	"$VMFERRY" mount "$SERVER_URL/${2:-disk}" "$T/fresh/mnt" --cache "$T/fresh/cache" \
		--key-file "$T/user.key" --cacert "$CACERT" \
		--token-file "$ADMIN_TOKEN_FILE" --read-only --no-hydrate \
		>>"$T/logs/fresh.log" 2>&1 || fail "fresh read-only mount"
	cp "$T/fresh/mnt/${2:-disk}.img" "$1" || fail "reading the server's version"
	"$VMFERRY" umount "$T/fresh/mnt" >>"$T/logs/fresh.log" 2>&1 ||
		fail "fresh umount"
}

acked=0 lost=0 wrong=0 bad=0
check() {
	local out a l w p
	out=$(python3 "$VERIFIER" check "$T/data/base.img" "$1" "$2" "$cycle_seed" "$3") || bad=1
	echo "  $3: $out"
	read -r a l w p < <(echo "$out" | sed -n 's/^RESULT acked=\([0-9]*\) lost=\([0-9]*\) wrong=\([0-9]*\) point=\(-\?[0-9]*\).*/\1 \2 \3 \4/p')
	if [ "$3" = local ]; then
		acked=$((acked + a))
	fi
	lost=$((lost + l))
	wrong=$((wrong + w))
	if [ -n "${4:-}" ] && [ "$p" != "$4" ]; then
		echo "  the server moved to point $p without any sync"
		wrong=$((wrong + 1))
		bad=1
	fi
}

# remount MNT [options]: mount_image, except that a copy refused with
# "would mix versions" returns 1 instead of failing.  That refusal is a
# known product bug (docs/faults.md, "Client crashes"): a crash after
# the server committed a sync but before the copy recorded it, with
# writes made after the sync's snapshot, leaves a copy that no longer
# mounts by itself.
remount() {
	local mnt=$1 i
	shift
	"$VMFERRY" mount -f "$SERVER_URL/disk" "$mnt" --cache "$T/cache" \
		"${MOUNT_KEY[@]}" --cacert "$CACERT" \
		--token-file "$ADMIN_TOKEN_FILE" "$@" >"$T/logs/mount.log" 2>&1 &
	MOUNT_PID=$!
	MOUNT_POINT=$mnt
	for ((i = 0; i < 300; i++)); do
		if mountpoint -q "$mnt" && [ -n "$(ls -A "$mnt" 2>/dev/null)" ]; then
			return 0
		fi
		if ! kill -0 "$MOUNT_PID" 2>/dev/null; then
			wait "$MOUNT_PID" 2>/dev/null || true
			MOUNT_PID=
			grep -q "would mix versions" "$T/logs/mount.log" && return 1
			fail "vmferry mount exited before the mount appeared"
		fi
		sleep 0.1
	done
	fail "mount did not appear after 30 s"
}

# rescue OUT: for a copy remount refused: publish it as a new image
# (vmferry push), read that back into OUT (the acknowledged records are
# checked there), discard the copy and read the server's version into
# base.img, where the next cycle starts.
stranded=0
rescue() {
	stranded=$((stranded + 1))
	local opts=(--cache "$T/cache" "${MOUNT_KEY[@]}" --cacert "$CACERT"
		--token-file "$ADMIN_TOKEN_FILE")
	echo "  stranded: the copy does not mount, rescued with vmferry push"
	"$VMFERRY" push "${opts[@]}" --as "rescue$stranded" "$SERVER_URL/disk" \
		>>"$T/logs/rescue.log" 2>&1 || fail "vmferry push"
	fresh_read "$1" "rescue$stranded"
	"$VMFERRY" discard "${opts[@]}" "$SERVER_URL/disk" >>"$T/logs/rescue.log" 2>&1 ||
		fail "vmferry discard"
	fresh_read "$T/data/server-now.img"
}

# after_crash LOG WHAT: remount the copy (a stranded one is rescued),
# check every acknowledged record of LOG in it, sync, unmount; with the
# checks good, the next cycle starts from the result (base.img).  WHAT
# ("crash", "power cut") names the event in a failure.
after_crash() {
	if ! remount "$T/mnt" --sync-interval 0 --no-hydrate; then
		rescue "$T/data/local.img"
		check "$1" "$T/data/local.img" local
		[ "$bad" = 0 ] && cp "$T/data/server-now.img" "$T/data/base.img"
		return 0
	fi
	cp "$T/mnt/disk.img" "$T/data/local.img"
	check "$1" "$T/data/local.img" local
	"$VMFERRY" sync "$T/mnt" >>"$T/logs/sync.log" 2>&1 || fail "cycle $cycle: sync after the $2"
	unmount "$T/mnt"
	[ "$bad" = 0 ] && cp "$T/data/local.img" "$T/data/base.img"
	return 0
}

# finish SCENARIO: the last sync's version must be exactly the client's
# state, no copy may have been stranded; the RESULT line, then the
# verdict.
finish() {
	if [ "$bad" = 0 ]; then
		fresh_read "$T/data/server.img"
		cmp "$T/data/server.img" "$T/data/base.img" || { wrong=$((wrong + 1)); echo "server differs after the final sync"; }
	fi
	echo "$stranded of $cycle copies stranded"
	# A copy that does not remount by itself is a failure (the pending
	# commit record, fusefs/pending.c, resumes an interrupted sync).
	[ "$stranded" = 0 ] || { bad=1; echo "$stranded copies did not remount by themselves"; }
	fault_result "$1" "$cycle" "$acked" "$lost" "$wrong"
	[ "$bad" = 0 ] || fail "a check failed (seed $seed)"
}
