# SPDX-License-Identifier: MIT
# Shell helpers for integration, fault and QEMU tests (source this file).
#
# Modelled on nbdkit's functions.sh and libfuse's common.sh:
#   requires CMD...        exit 77 (skip) if a prerequisite is missing
#   cleanup_fn CMD...      run CMD on exit, newest first
#   server_init DIR        vmferry-server init DIR
#   start_server DIR       a real server on 127.0.0.1, port 0; sets
#                          SERVER_PID SERVER_PORT SERVER_URL CACERT
#                          ADMIN_TOKEN_FILE
#   stop_server            SIGTERM the server and wait for it
#   mount_image URL MNT [vmferry mount options...]
#                          a real mount in the foreground (-f) with the
#                          key options in the array MOUNT_KEY (default:
#                          --key-file $T/user.key); sets MOUNT_PID;
#                          fails if the daemon dies first
#   unmount MNT            fusermount3 -u; fails if the daemon is still
#                          running after 30 s
#   make_image FILE SIZE   random data with zero runs (python3)
#   fail MSG               print MSG and exit 1
# Each test gets its own directory $T (with mnt/ data/ logs/); its logs
# are printed when the test fails.

set -euo pipefail

: "${VMFERRY_BUILD:=build}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$TOP/$VMFERRY_BUILD"
VMFERRY="$BUILD/vmferry"
VMFERRY_SERVER="$BUILD/vmferry-server"
export VMFERRY_NO_DAEMON_SYSLOG=1

T=$(mktemp -d "${TMPDIR:-/tmp}/vmferry-test.XXXXXX")
mkdir -p "$T/mnt" "$T/data" "$T/logs"
export XDG_CACHE_HOME="$T/xdg-cache"

_cleanup_hooks=()
_daemon_failed=0
cleanup_fn() {
	_cleanup_hooks+=("$*")
}

_run_cleanup() {
	local status=$?
	local i
	set +e
	for ((i = ${#_cleanup_hooks[@]} - 1; i >= 0; i--)); do
		eval "${_cleanup_hooks[$i]}"
	done
	if [ "$status" -eq 0 ] && [ "${_daemon_failed:-0}" = 1 ]; then
		status=1
	fi
	if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
		for f in "$T"/logs/*; do
			[ -f "$f" ] || continue
			echo "---- $f (last 40 lines) ----"
			tail -n 40 "$f"
		done
	fi
	if [ "$status" -eq 0 ] || [ "$status" -eq 77 ]; then
		rm -rf "$T"
	else
		echo "test directory kept: $T"
	fi
	exit "$status"
}
trap _run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

requires() {
	local c
	for c in "$@"; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "SKIP: $c not available" >&2
			exit 77
		fi
	done
}

requires_fuse() {
	[ -c /dev/fuse ] || { echo "SKIP: no /dev/fuse" >&2; exit 77; }
	requires fusermount3
}

# Run a daemon under valgrind when VMFERRY_VALGRIND=1.
_wrap() {
	if [ "${VMFERRY_VALGRIND:-0}" = 1 ]; then
		echo valgrind --leak-check=full --error-exitcode=119 \
			--suppressions="$TOP/tests/valgrind.supp"
	fi
}

server_init() {
	"$VMFERRY_SERVER" init "$1" >"$T/logs/server-init.log" 2>&1 ||
		fail "vmferry-server init $1"
}

# Wait (up to $2 seconds, default 30) for a file to exist.
wait_for_file() {
	local f=$1 secs=${2:-30} i
	for ((i = 0; i < secs * 10; i++)); do
		[ -s "$f" ] && return 0
		sleep 0.1
	done
	return 1
}

start_server() {
	local dir=$1
	shift
	[ -f "$dir/cert.pem" ] || server_init "$dir"
	local ready="$T/server.ready"
	rm -f "$ready"
	# shellcheck disable=SC2046
	$(_wrap) "$VMFERRY_SERVER" serve "$dir" --listen 127.0.0.1:0 \
		--ready-file "$ready" "$@" >"$T/logs/server.log" 2>&1 &
	SERVER_PID=$!
	cleanup_fn stop_server
	local i
	for ((i = 0; i < 300; i++)); do
		[ -s "$ready" ] && break
		kill -0 "$SERVER_PID" 2>/dev/null ||
			fail "vmferry-server exited before it was ready"
		sleep 0.1
	done
	[ -s "$ready" ] || fail "vmferry-server not ready after 30 s"
	SERVER_PORT=$(cat "$ready")
	SERVER_URL="https://127.0.0.1:$SERVER_PORT"
	CACERT="$dir/cert.pem"
	ADMIN_TOKEN_FILE="$dir/admin.token"
	SERVER_DIR=$dir
}

# Stops the server; a non-zero exit (a sanitizer report, a crash) fails
# the test, even when it happens during cleanup.
stop_server() {
	[ -n "${SERVER_PID:-}" ] || return 0
	local st=0
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || st=$?
	SERVER_PID=
	if [ "$st" -ne 0 ]; then
		echo "FAIL: vmferry-server exited with status $st" >&2
		_daemon_failed=1
		return 1
	fi
}

# curl against the test server with the admin token.
scurl() {
	curl -sS --cacert "$CACERT" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")" "$@"
}

MOUNT_KEY=(--key-file "$T/user.key")
mount_image() {
	local url=$1 mnt=$2
	shift 2
	local log="$T/logs/mount.log"
	# shellcheck disable=SC2046
	$(_wrap) "$VMFERRY" mount -f "$url" "$mnt" \
		--cache "$T/cache" "${MOUNT_KEY[@]}" \
		--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		"$@" >"$log" 2>&1 &
	MOUNT_PID=$!
	MOUNT_POINT=$mnt
	cleanup_fn "unmount_quiet $mnt"
	local i
	for ((i = 0; i < 300; i++)); do
		if mountpoint -q "$mnt" && [ -n "$(ls -A "$mnt" 2>/dev/null)" ]; then
			return 0
		fi
		kill -0 "$MOUNT_PID" 2>/dev/null ||
			fail "vmferry mount exited before the mount appeared"
		sleep 0.1
	done
	fail "mount did not appear after 30 s"
}

unmount() {
	local mnt=$1 i
	fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$MOUNT_PID" 2>/dev/null; then
		fail "vmferry mount still running 30 s after unmount"
	fi
	wait "$MOUNT_PID" || fail "vmferry mount exited with status $?"
	MOUNT_PID=
}

unmount_quiet() {
	if mountpoint -q "$1" 2>/dev/null; then
		fusermount3 -u "$1" 2>/dev/null || fusermount3 -uz "$1" 2>/dev/null || true
	fi
	if [ -n "${MOUNT_PID:-}" ]; then
		local i
		for ((i = 0; i < 100; i++)); do
			kill -0 "$MOUNT_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill "$MOUNT_PID" 2>/dev/null || true
		wait "$MOUNT_PID" 2>/dev/null || true
	fi
}

# make_image FILE SIZE_BYTES [SEED]: random data with runs of zeros, so
# both data and zero blocks occur; deterministic for a given seed.
make_image() {
	python3 - "$1" "$2" "${3:-1}" <<'PY'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(path, "wb") as f:
    left = size
    while left > 0:
        n = min(left, rng.choice([4096, 65536, 200000, 1 << 20]))
        if rng.random() < 0.4:
            f.write(b"\0" * n)
        else:
            f.write(rng.randbytes(n))
        left -= n
PY
}

# Server-side counters (admin /v1/stats) as "key value" lines.
server_stat() {
	scurl "$SERVER_URL/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# import_image NAME FILE [options]: vmferry-server import into the test
# server's directory.
import_image() {
	local name=$1 file=$2
	shift 2
	"$VMFERRY_SERVER" import "$SERVER_DIR" "$name" "$file" "$@" \
		>>"$T/logs/import.log" 2>&1 || fail "import $name $file"
}

# mount_status FIELD: one field of `vmferry status --json` for the mount.
mount_status() {
	"$VMFERRY" status --json "$MOUNT_POINT" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

# wait_hydrated [SECS]: wait until the mount reports a complete copy.
wait_hydrated() {
	local secs=${1:-120} i
	for ((i = 0; i < secs * 10; i++)); do
		[ "$(mount_status complete)" = True ] && return 0
		sleep 0.1
	done
	fail "hydration not complete after $secs s"
}

# qemu_setup: for QEMU tests.  Skips without qemu; sets $img to the
# bootable test image (built by tests/qemu/mkimage.sh if absent), picks
# the accelerator by a probe boot (or $VMFERRY_ACCEL) and a boot timeout.
qemu_setup() {
	requires qemu-system-x86_64
	img=${VMFERRY_TEST_IMAGE:-$TOP/build/test-image/test.img}
	if [ ! -f "$img" ]; then
		"$TOP/tests/qemu/mkimage.sh" "$img" 1024 >"$T/logs/mkimage.log" 2>&1 ||
			fail "building the test image"
	fi
	export VMFERRY_ACCEL=${VMFERRY_ACCEL:-$("$TOP/tests/qemu/accel.sh" "$img")}
	export VMFERRY_BOOT_TIMEOUT=${VMFERRY_BOOT_TIMEOUT:-240}
}

# Fault tests (tests/faults/): a short run in make check, the counts the
# issue asks for with VMFERRY_FAULTS_FULL=1 (make check-faults).
# faults_count SHORT FULL: how many cycles this run does.
faults_count() {
	if [ "${VMFERRY_FAULTS_FULL:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi
}
# fault_result SCENARIO CYCLES ACKED LOST WRONG: the line make
# check-faults gathers into its table (tests/faults/summary.sh); the
# test fails if anything was lost or wrong.
fault_result() {
	local secs=$SECONDS
	echo "RESULT scenario=$1 cycles=$2 acked=$3 lost=$4 wrong=$5 secs=$secs"
	[ "$4" = 0 ] || fail "$1: $4 acknowledged writes lost"
	[ "$5" = 0 ] || fail "$1: $5 wrong bytes returned"
}

# version_holds NAME VERSION STRING: check, byte for byte, that version
# VERSION of NAME (on the test server) holds STRING in a block that
# changed since VERSION-1: the blocks whose manifest entry changed are
# read from the version's data URL, each checked against its SHA-256 in
# the manifest, and searched.  Prints how many blocks changed.
version_holds() {
	python3 - "$SERVER_URL" "$CACERT" "$ADMIN_TOKEN_FILE" "$1" "$2" "$3" <<'PY'
import hashlib, ssl, sys, urllib.request
url, cacert, tokfile, name, ver, needle = sys.argv[1:]
ver = int(ver)
tok = open(tokfile).read().strip()
ctx = ssl.create_default_context(cafile=cacert)
def get(path, rng=None):
    req = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + tok})
    if rng:
        req.add_header("Range", "bytes=%d-%d" % rng)
    with urllib.request.urlopen(req, context=ctx) as r:
        return r.read()
def entries(v):
    m = get("/v1/images/%s/versions/%d/manifest" % (name, v))
    bs = int.from_bytes(m[12:16], "little")
    size = int.from_bytes(m[16:24], "little")
    return bs, size, [m[64 + 32 * i:96 + 32 * i] for i in range((len(m) - 64) // 32)]
bs, size, new = entries(ver)
_, _, old = entries(ver - 1)
changed = [i for i in range(len(new)) if new[i] != old[i]]
found = False
for i in changed:
    end = min(size, (i + 1) * bs) - 1
    data = get("/v1/images/%s/versions/%d/data" % (name, ver), (i * bs, end))
    if new[i] == bytes(32):
        ok = data == bytes(len(data))
    else:
        ok = hashlib.sha256(data).digest() == new[i]
    if not ok:
        sys.exit("block %d of version %d does not match its manifest" % (i, ver))
    found = found or needle.encode() in data
print("%d blocks changed" % len(changed))
if not found:
    sys.exit("%r is in none of version %d's changed blocks" % (needle, ver))
PY
}

# image_field NAME FIELD: one field of GET /v1/images/NAME (JSON; null
# prints None).
image_field() {
	scurl "$SERVER_URL/v1/images/$1" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# run_setup: `vmferry run` keeps its mountpoints and sockets in a
# private runtime directory: $T/run.
run_setup() {
	export XDG_RUNTIME_DIR="$T/run"
	mkdir -m 700 "$T/run"
}

# run_testvm_setup [serve options]: for `vmferry run` boot tests: FUSE,
# QEMU (qemu_setup), run_setup, a server holding the test image as
# testvm, whose policy sizes its VM as tests/qemu/boot.sh does (256 MiB,
# one CPU).
run_testvm_setup() {
	requires_fuse
	qemu_setup
	run_setup
	start_server "$T/srv" "$@"
	import_image testvm "$img"
	printf '{"vm": {"memory": "256M", "cpus": 1}}\n' >"$SERVER_DIR/images/testvm/policy.json"
}

# wait_boot_start FILE PID: wait (up to 120 s) until the guest's console
# in FILE says VMFERRY-BOOT-START; fail if process PID ends first.
wait_boot_start() {
	local i
	for ((i = 0; i < 1200; i++)); do
		grep -q VMFERRY-BOOT-START "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || fail "the run ended before the guest started"
		sleep 0.1
	done
	fail "the guest did not start in 120 s"
}

# run_args NAME [options]: the arguments of `vmferry run NAME --local`
# against the test server, into the array RUN_ARGS.
run_args() {
	local name=$1
	shift
	RUN_ARGS=(run --server "$SERVER_URL" "$name" --local
		--cache "$T/cache" "${MOUNT_KEY[@]}" --cacert "$CACERT"
		--token-file "$ADMIN_TOKEN_FILE" --log "$T/logs/mount.log" "$@")
}

# run_local NAME [options]: vmferry run NAME --local (run_args), console
# in logs/console.log, messages in logs/run.err.
# A guest that hangs is powered off (SIGTERM) after the boot timeout.
run_local() {
	run_args "$@"
	timeout -k 60 "${VMFERRY_BOOT_TIMEOUT:-240}" "$VMFERRY" "${RUN_ARGS[@]}" \
		</dev/null >"$T/logs/console.log" 2>"$T/logs/run.err"
}
