#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Print the QEMU accelerator the boot tests should use: "kvm" or "tcg".
#
#   tests/qemu/accel.sh [IMAGE]
#
# VMFERRY_ACCEL, if set, wins.  Otherwise the answer is tcg unless KVM has
# been seen to boot a real guest on this host: /dev/kvm can be present and
# still useless (nested or paravirtual KVM where guests die with "KVM
# internal error ... emulation failure" in the bootloader, or hang in the
# kernel).  So with an IMAGE from mkimage.sh we boot it under kvm, read-only,
# with a 20 s limit, and say kvm only if it reached VMFERRY-BOOT-OK.  The
# probe's answer is cached per host boot in /tmp, keyed by
# /proc/sys/kernel/random/boot_id.  Without an IMAGE and no cached answer,
# the answer is tcg.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ -n ${VMFERRY_ACCEL:-} ]]; then
	echo "$VMFERRY_ACCEL"
	exit 0
fi

if [[ ! -c /dev/kvm || ! -r /dev/kvm || ! -w /dev/kvm ]]; then
	echo tcg
	exit 0
fi

boot_id=$(tr -dc '0-9a-f-' </proc/sys/kernel/random/boot_id 2>/dev/null) || boot_id=
if [[ -z $boot_id ]]; then
	echo tcg
	exit 0
fi
cache="${TMPDIR:-/tmp}/vmferry-accel.$(id -u).$boot_id"

cached() {
	local a
	[[ -f $cache ]] || return 1
	a=$(<"$cache")
	[[ $a == kvm || $a == tcg ]] || return 1
	echo "$a"
}

if cached; then
	exit 0
fi

image=${1:-}
if [[ -z $image || ! -f $image ]]; then
	echo tcg
	exit 0
fi

# Parallel tests probe once: the others wait here for the answer.
exec 9>"$cache.lock"
flock 9
if cached; then
	exit 0
fi

answer=tcg
log=$(mktemp "${TMPDIR:-/tmp}/vmferry-accel-probe.XXXXXX")
if VMFERRY_ACCEL=kvm VMFERRY_BOOT_TIMEOUT=20 VMFERRY_QEMU_READONLY=1 \
	VMFERRY_BOOT_LOG="$log" "$here/boot.sh" "$image" >/dev/null 2>&1; then
	answer=kvm
fi
rm -f "$log"

echo "$answer" >"$cache.tmp.$$"
mv -f "$cache.tmp.$$" "$cache"
echo "$answer"
