#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The image builders (tests/qemu/mkimage.sh, bench/mkimage-debian.sh,
# sharing tests/qemu/image-lib.sh) refuse bad arguments with a clear
# message before building or installing anything: usage errors exit 2,
# bad sizes exit 1, and no image or work directory appears.
source "$(dirname "$0")/../lib.sh"

# expect TOOL STATUS PATTERN ARGS...: TOOL ARGS exits STATUS, saying
# PATTERN on stderr.
expect() {
	local tool=$1 want=$2 pattern=$3 st=0 err
	shift 3
	err=$("$TOP/$tool" "$@" 2>&1 >/dev/null </dev/null) || st=$?
	[ "$st" = "$want" ] || fail "$tool $*: status $st, not $want: $err"
	echo "$err" | grep -q -- "$pattern" || fail "$tool $*: no \"$pattern\" in: $err"
	echo "$tool $*: $err"
}
out=$T/data/img/out.img
for tool in tests/qemu/mkimage.sh bench/mkimage-debian.sh; do
	case $tool in
	*debian*) unit=GIB small=2 big=2048 ;;
	*) unit=MIB small=159 big=2097152 ;;
	esac
	expect "$tool" 2 "usage: .* OUT.img \[SIZE_$unit\]"
	expect "$tool" 2 "usage:" -x
	expect "$tool" 2 "usage:" "$out" 4 extra
	expect "$tool" 1 "SIZE_$unit must be a number" "$out" 4x
	expect "$tool" 1 "SIZE_$unit must be at least $((small + 1)) (got $small)" "$out" "$small"
	expect "$tool" 1 "SIZE_$unit too large for an MBR disk (got $big)" "$out" "$big"
done
[ ! -e "$T/data/img" ] || fail "a refused build left $(ls -A "$T/data/img")"
