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
#   start_nginx 'LINES'    nginx on 127.0.0.1 over HTTPS with the test
#                          server's certificate, LINES inside its server
#                          block; sets NGINX_PID NGINX_URL NGINX_LOG
#   export_image NAME DIR  vmferry export of NAME into DIR/NAME/; sets
#                          EXPORT_SHA (the manifest's SHA-256)
#   mount_refused STATUS REGEX URL [opts...]  vmferry mount must exit
#                          STATUS with REGEX on stderr, mounting nothing
#   exported_image SIZE SEED DIR  a test server with image "disk" (make_image
#                          into $T/data/img.raw), exported into DIR/disk/;
#                          sets WANT (its sha256) and EXPORT_SHA
#   start_ftp DIR          an anonymous read-only FTP server (pyftpdlib)
#                          on 127.0.0.1 serving DIR; sets FTP_PID FTP_URL
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
	_wait_mounted "$mnt" 30
}

# _wait_mounted MNT SECS: until MNT shows the image file; fails if the
# daemon ($MOUNT_PID) dies first.
_wait_mounted() {
	local mnt=$1 i
	for ((i = 0; i < $2 * 10; i++)); do
		if mountpoint -q "$mnt" && [ -n "$(ls -A "$mnt" 2>/dev/null)" ]; then
			return 0
		fi
		kill -0 "$MOUNT_PID" 2>/dev/null ||
			fail "vmferry mount exited before the mount appeared"
		sleep 0.1
	done
	fail "mount did not appear after $2 s"
}

unmount() {
	local mnt=$1 i
	fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$MOUNT_PID" 2>/dev/null; then
		# Where it is stuck, for the failure's logs.
		if command -v gdb >/dev/null; then
			gdb -p "$MOUNT_PID" -batch -ex "thread apply all bt" \
				>"$T/logs/stuck-mount-bt.log" 2>&1 || true
		fi
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

# start_nginx 'LINES': nginx (Debian's, as a foreground child, `user
# root` to read $T) on a free port of 127.0.0.1 over HTTPS with the test
# server's certificate ($CACERT: call start_server or server_init
# first); LINES go inside its server block.  The access log
# ($NGINX_LOG) has one "$request_uri $status $bytes_sent" per request.
start_nginx() {
	requires nginx
	local srv=${SERVER_DIR:-$T/srv}
	[ -f "$srv/cert.pem" ] || server_init "$srv"
	CACERT="$srv/cert.pem"
	NGINX_PORT=$(free_port)
	nginx_conf "server {
		listen 127.0.0.1:$NGINX_PORT ssl;
		ssl_certificate $srv/cert.pem;
		ssl_certificate_key $srv/key.pem;
		$1
	}"
	run_nginx "$CACERT"
}

# free_port: a TCP port of 127.0.0.1 free a moment ago.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# nginx_conf 'HTTP': $T/nginx/nginx.conf, a foreground nginx (`user
# root` to read $T) whose http block holds HTTP after the test's
# temporary paths and access log ($NGINX_LOG).
nginx_conf() {
	mkdir -p "$T/nginx"
	NGINX_LOG="$T/logs/nginx-access.log"
	cat >"$T/nginx/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/logs/nginx-error.log;
events { worker_connections 1024; }
http {
	log_format uri '\$request_uri \$status \$bytes_sent';
	access_log $NGINX_LOG uri;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	default_type application/octet-stream;
	$1
}
CONF
}

# run_nginx CACERT: start nginx with $T/nginx/nginx.conf, listening on
# $NGINX_PORT with a certificate CACERT verifies; wait until it answers.
# Sets NGINX_PID NGINX_URL.
run_nginx() {
	local i code
	nginx -c "$T/nginx/nginx.conf" -e "$T/logs/nginx-error.log" \
		>"$T/logs/nginx.out" 2>&1 &
	NGINX_PID=$!
	cleanup_fn stop_nginx
	NGINX_URL="https://127.0.0.1:$NGINX_PORT"
	for ((i = 0; i < 300; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$1" \
			"$NGINX_URL/" 2>/dev/null || true)
		[ -n "$code" ] && [ "$code" != 000 ] && break
		kill -0 "$NGINX_PID" 2>/dev/null || fail "nginx exited before it was ready"
		sleep 0.1
	done
	[ -n "$code" ] && [ "$code" != 000 ] || fail "nginx not ready after 30 s"
	: >"$NGINX_LOG"
}

stop_nginx() {
	[ -n "${NGINX_PID:-}" ] || return 0
	kill "$NGINX_PID" 2>/dev/null || true
	wait "$NGINX_PID" 2>/dev/null || true
	NGINX_PID=
}

# nginx_hits REGEX: requests in the access log whose URI matches REGEX.
nginx_hits() {
	grep -cE "^$1 " "$NGINX_LOG" || true
}

# export_image NAME DIR: the current version of NAME on the test server,
# exported into DIR/NAME/.
export_image() {
	"$VMFERRY" export --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		"$SERVER_URL/$1" "$2" >"$T/logs/export-$1.out" 2>&1 ||
		fail "vmferry export $1 $2: $(cat "$T/logs/export-$1.out")"
	EXPORT_SHA=$(sed -n 's/^manifest sha256: //p' "$T/logs/export-$1.out")
	[ ${#EXPORT_SHA} = 64 ] || fail "export printed no manifest sha256"
}

# mount_refused STATUS REGEX URL [options...]: a mount on $T/mnt (own
# cache, the test's key) that must exit with STATUS, say REGEX (grep -E)
# on stderr, and leave nothing mounted.  Its stderr: $T/logs/refused.err.
mount_refused() {
	local want=$1 re=$2 url=$3 st=0 err="$T/logs/refused.err"
	shift 3
	"$VMFERRY" mount -f "$url" "$T/mnt" --cache "$T/cache-refused" \
		"${MOUNT_KEY[@]}" "$@" 2>"$err" || st=$?
	[ "$st" = "$want" ] || fail "mount $url: exit $st, want $want: $(cat "$err")"
	grep -qE -- "$re" "$err" || fail "mount $url: no \"$re\" in: $(cat "$err")"
	! mountpoint -q "$T/mnt" || fail "mount $url: mounted anyway"
}

# exported_image SIZE SEED DIR: start_server, then image "disk" made,
# imported and exported into DIR/disk/.
exported_image() {
	start_server "$T/srv"
	make_image "$T/data/img.raw" "$1" "$2"
	import_image disk "$T/data/img.raw"
	WANT=$(sha256sum <"$T/data/img.raw" | cut -d' ' -f1)
	export_image disk "$3"
}

# start_ftp DIR: pyftpdlib, anonymous and read-only, on 127.0.0.1
# (control and passive data connections alike).
start_ftp() {
	# Debian's python3-pyftpdlib is for Debian's python3, which another
	# python3 earlier on PATH (pyenv, a venv) does not see.
	local py=/usr/bin/python3
	[ -x "$py" ] || py=python3
	"$py" -c 'import pyftpdlib' 2>/dev/null ||
		{ echo "SKIP: python3-pyftpdlib not installed" >&2; exit 77; }
	local dir=$1 ready="$T/ftp.ready" i
	rm -f "$ready"
	"$py" - "$dir" "$ready" >"$T/logs/ftp.log" 2>&1 <<'PY' &
import os, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
auth = DummyAuthorizer()
auth.add_anonymous(sys.argv[1], perm="elr")
FTPHandler.authorizer = auth
server = FTPServer(("127.0.0.1", 0), FTPHandler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d\n" % server.socket.getsockname()[1])
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
PY
	FTP_PID=$!
	cleanup_fn stop_ftp
	for ((i = 0; i < 300; i++)); do
		[ -s "$ready" ] && break
		kill -0 "$FTP_PID" 2>/dev/null || fail "the FTP server exited before it was ready"
		sleep 0.1
	done
	[ -s "$ready" ] || fail "the FTP server not ready after 30 s"
	FTP_URL="ftp://127.0.0.1:$(cat "$ready")"
}

stop_ftp() {
	[ -n "${FTP_PID:-}" ] || return 0
	kill "$FTP_PID" 2>/dev/null || true
	wait "$FTP_PID" 2>/dev/null || true
	FTP_PID=
}

# mount_plain URL MNT [options...]: as mount_image, for a plain export
# (no token, no --cacert unless given).
mount_plain() {
	local url=$1 mnt=$2
	shift 2
	# shellcheck disable=SC2046
	$(_wrap) "$VMFERRY" mount -f "$url" "$mnt" \
		--cache "$T/cache" "${MOUNT_KEY[@]}" "$@" \
		>"$T/logs/mount.log" 2>&1 &
	MOUNT_PID=$!
	MOUNT_POINT=$mnt
	cleanup_fn "unmount_quiet $mnt"
	# A server without ranges gets a full download first: 60 s.
	_wait_mounted "$mnt" 60
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

# flip_manifest_entry FILE BLKNO: one byte of block BLKNO's hash
# flipped in the manifest file FILE (as a proxy or cache could alter it).
flip_manifest_entry() {
	python3 - "$1" "$2" <<'PY'
import sys
p, blkno = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[64 + blkno * 32] ^= 0x01  # header (64 bytes), then 32 bytes a block
open(p, "wb").write(b)
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

# The headers of a WebSocket upgrade (curl -H ...; RFC 6455's example
# key), for the VNC tests.
WS_UPGRADE=(-H "Upgrade: websocket" -H "Connection: Upgrade" -H "Sec-WebSocket-Version: 13"
	-H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")

# expect_answer STATUS MESSAGE CURL-ARGS...: curl's answer (HTTP/1.1, the test
# CA) must have STATUS and MESSAGE in its body; both are printed.
expect_answer() {
	local want=$1 msg=$2 out code
	shift 2
	out=$(curl -sS --http1.1 --max-time 10 --cacert "$CACERT" -w '\n%{http_code}' "$@") || true
	code=${out##*$'\n'}
	echo "$code ${out%$'\n'*}"
	[ "$code" = "$want" ] || fail "want $want for $*: $out"
	echo "$out" | grep -q "$msg" || fail "want \"$msg\" for $*: $out"
}
