#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Boot a test image built by tests/qemu/mkimage.sh in QEMU, headless, and
# wait for its marker line on the serial console.
#
#   tests/qemu/boot.sh IMAGE [EXTRA...]
#
# Each EXTRA that starts with '-' is passed to qemu as is; any other is
# appended to the image's -drive options (e.g. aio=threads).
#
# Environment:
#   VMFERRY_ACCEL          tcg or kvm (default: tests/qemu/accel.sh IMAGE)
#   VMFERRY_BOOT_TIMEOUT   seconds before giving up (default 300)
#   VMFERRY_BOOT_LOG       file to copy the console to (default: stdout)
#   VMFERRY_QEMU_CACHE     -drive cache= mode (default writeback)
#   VMFERRY_QEMU_READONLY  1: attach the disk with readonly=on
#   VMFERRY_QEMU_DRIVE     the drive's source instead of file=IMAGE (IMAGE
#                          is then only a name), e.g. QEMU's own curl
#                          driver: file.driver=https,file.url=URL,...
#
# Exits 0 and prints "boot: marker after N.NN s" (time from qemu's start to
# VMFERRY-BOOT-OK) if the guest reported success.  Exits 1, with the tail of
# the console on stderr, on VMFERRY-BOOT-FAIL, timeout, or qemu exiting
# without a marker.  Only the qemu this script starts is ever killed.

set -euo pipefail

prog=boot
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
	echo "$prog: error: $*" >&2
	exit 1
}

if [[ $# -lt 1 || $1 == -* ]]; then
	echo "usage: $0 IMAGE [EXTRA-DRIVE-OPTION|-QEMU-ARG...]" >&2
	exit 2
fi
image=$1
shift
[[ -n ${VMFERRY_QEMU_DRIVE:-} || -f $image || -b $image ]] || die "no image '$image'"

timeout_s=${VMFERRY_BOOT_TIMEOUT:-300}
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] ||
	die "VMFERRY_BOOT_TIMEOUT must be a positive number of seconds"
command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"

accel=${VMFERRY_ACCEL:-}
if [[ -z $accel ]]; then
	accel=$("$here/accel.sh" "$image")
fi
case $accel in
kvm) accel_args=(-accel kvm -cpu host) ;;
tcg) accel_args=(-accel tcg) ;;
*) die "unknown accelerator '$accel' (want tcg or kvm)" ;;
esac

# qemu option values escape commas by doubling them.
source="file=${image//,/,,}"
[[ -z ${VMFERRY_QEMU_DRIVE:-} ]] || source=$VMFERRY_QEMU_DRIVE
drive="$source,format=raw,if=virtio,cache=${VMFERRY_QEMU_CACHE:-writeback}"
if [[ ${VMFERRY_QEMU_READONLY:-0} == 1 ]]; then
	drive+=",readonly=on"
fi
qemu_extra=()
for arg in "$@"; do
	if [[ $arg == -* ]]; then
		qemu_extra+=("$arg")
	else
		drive+=",$arg"
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vmferry-boot.XXXXXX")
qpid=
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Where the console goes: fd 4.  A full copy is kept in $tmp for the tail.
if [[ -n ${VMFERRY_BOOT_LOG:-} ]]; then
	exec 4>"$VMFERRY_BOOT_LOG" || die "cannot write $VMFERRY_BOOT_LOG"
else
	exec 4>&1
fi
console="$tmp/console.log"
: >"$console"

# Microseconds since the epoch, without forking (EPOCHREALTIME's decimal
# separator follows the locale, so keep only the digits).
now_us() {
	local t=${EPOCHREALTIME//[!0-9]/}
	echo "$((10#$t))"
}

mkfifo "$tmp/serial"
start=$(now_us)
qemu-system-x86_64 \
	-nodefaults -no-user-config -display none -vga none \
	"${accel_args[@]}" -smp 1 -m 256 -no-reboot \
	-serial stdio -monitor none \
	-drive "$drive" \
	"${qemu_extra[@]}" \
	</dev/null >"$tmp/serial" 2>&1 &
qpid=$!
exec 3<"$tmp/serial"

deadline=$((start + timeout_s * 1000000))
result=exited
line=
while :; do
	left=$((deadline - $(now_us)))
	if ((left <= 0)); then
		result=timeout
		break
	fi
	printf -v wait_s '%d.%06d' $((left / 1000000)) $((left % 1000000))
	if IFS= read -r -t "$wait_s" line <&3; then
		:
	else
		rc=$?
		if ((rc > 128)); then
			result=timeout
			break
		fi
		# EOF: qemu is gone.  Handle a last unterminated line.
		[[ -n $line ]] || break
	fi
	line=${line%$'\r'}
	printf '%s\n' "$line" >&4
	printf '%s\n' "$line" >>"$console"
	case $line in
	*VMFERRY-BOOT-OK*)
		result=ok
		break
		;;
	*VMFERRY-BOOT-FAIL*)
		result=fail
		break
		;;
	esac
	line=
done
end=$(now_us)
elapsed=$((end - start))
secs=$(printf '%d.%02d' $((elapsed / 1000000)) $((elapsed % 1000000 / 10000)))

# The guest powers itself off after its marker; don't wait for it.
if kill -0 "$qpid" 2>/dev/null; then
	kill "$qpid" 2>/dev/null || true
fi
qrc=0
wait "$qpid" 2>/dev/null || qrc=$?
qpid=
exec 3<&-

case $result in
ok)
	echo "boot: marker after $secs s ($accel)"
	exit 0
	;;
fail) msg="guest reported failure after $secs s ($accel)" ;;
timeout) msg="no marker after $timeout_s s ($accel), qemu killed" ;;
exited) msg="qemu exited (status $qrc) without a marker after $secs s ($accel)" ;;
esac
{
	echo "boot: $msg; last console lines:"
	tail -n 40 "$console" | sed 's/^/  | /'
} >&2
exit 1
