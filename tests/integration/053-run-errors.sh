#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmferry run: --help, and bad input refused with a clear message and
# nothing taken: no --local/--remote, bad --memory/--cpus/--accel, an
# unknown image, no QEMU, a name with no server to look it up on.
source "$(dirname "$0")/../lib.sh"
run_setup
start_server "$T/srv"
make_image "$T/data/img" $((2 * 1024 * 1024))
import_image vm1 "$T/data/img"

out=$("$VMFERRY" run --help) || fail "--help failed"
echo "$out" | grep -q "^usage: vmferry run" || fail "--help: $out"
echo "$out" | grep -q -- "--memory" || fail "--help does not describe --memory"

# expect STATUS PATTERN ARGS...: vmferry run ARGS exits STATUS, saying
# PATTERN on stderr.
expect() {
	local want=$1 pattern=$2 st=0 err
	shift 2
	err=$("$VMFERRY" run "$@" 2>&1 >/dev/null </dev/null) || st=$?
	[ "$st" = "$want" ] || fail "run $*: status $st, not $want: $err"
	echo "$err" | grep -q -- "$pattern" || fail "run $*: no \"$pattern\" in: $err"
	echo "run $*: $err"
}
base=(--server "$SERVER_URL" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE"
	--cache "$T/cache" --key-file "$T/user.key")
expect 2 "say where the VM runs" "${base[@]}" vm1
expect 2 "say where the VM runs" "${base[@]}" vm1 --local --remote
expect 2 "--memory: invalid value \"lots\"" "${base[@]}" vm1 --local --memory lots
expect 2 "--memory: invalid value \"8\"" "${base[@]}" vm1 --local --memory 8
expect 2 "--memory: invalid value" "${base[@]}" vm1 --local --memory 2P
expect 2 "--cpus: invalid value \"0\"" "${base[@]}" vm1 --local --cpus 0
expect 2 "--accel: want auto, kvm or tcg" "${base[@]}" vm1 --local --accel xen
expect 2 "choose one" "${base[@]}" vm1 --local --keep --ephemeral
expect 1 "no image \"nosuch\"" "${base[@]}" nosuch --local --qemu /bin/true
expect 1 "/nonexistent/qemu not found" "${base[@]}" vm1 --local --qemu /nonexistent/qemu
st=0
err=$(PATH=/nonexistent "$VMFERRY" run "${base[@]}" vm1 --local 2>&1 </dev/null) || st=$?
[ "$st" = 1 ] || fail "run without QEMU on the PATH: status $st"
echo "$err" | grep -q "qemu-system-x86_64 not found: install QEMU" || fail "run without QEMU: $err"
expect 2 "no local copy has this name" --cache "$T/cache" vm1 --local
expect 2 "not an image name or URL" --cache "$T/cache" "../x" --local

[ "$(scurl "$SERVER_URL/v1/images/vm1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lease"])')" = None ] ||
	fail "a refused run left a lease"
[ -z "$(find "$T/run" -name 'run-*')" ] || fail "a refused run left a mountpoint"
