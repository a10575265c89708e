#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Print the QEMU accelerator the boot tests should use: "kvm" or "tcg".
#
#   tests/qemu/accel.sh [IMAGE]
#
# VMFERRY_ACCEL, if set, wins.  Otherwise the product decides, as
# `vmferry run` does: `vmferry accel` says kvm only if a short probe boot
# under KVM worked (lib/accel.h: /dev/kvm can be present and useless, so
# its presence decides nothing; the answer is cached per host boot in
# ${TMPDIR:-/tmp}/vmferry-accel.UID.BOOT_ID).  Without a built vmferry,
# tcg.  IMAGE is accepted for compatibility and ignored.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vmferry="$here/../../${VMFERRY_BUILD:-build}/vmferry"

if [[ -n ${VMFERRY_ACCEL:-} ]]; then
	echo "$VMFERRY_ACCEL"
	exit 0
fi
if [[ -x $vmferry ]] && a=$("$vmferry" accel 2>/dev/null) && [[ $a == kvm || $a == tcg ]]; then
	echo "$a"
	exit 0
fi
echo tcg
