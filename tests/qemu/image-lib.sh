# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Helpers shared by the image builders, tests/qemu/mkimage.sh (the small
# test image) and bench/mkimage-debian.sh (the bench's Debian image).
# Sourced, not run.  The caller sets $prog (the name in messages) and
# $out (the image to build, an absolute path) and $self (the script,
# whose mtime decides whether $out is up to date).
#
#   img_args UNIT DEFAULT MIN MAX "$@"
#                               parse "OUT.img [SIZE_UNIT]": sets $out and
#                               $size (a number from MIN to MAX, DEFAULT
#                               when absent); usage errors exit 2
#   die MSG / info MSG          one line on stderr (die exits 1)
#   need PACKAGE CMD|PATH...    note PACKAGE as missing unless all exist
#   install_missing             apt-get install what need() noted
#   img_uptodate                $out exists and is newer than $self and
#                               this file
#   img_begin WORK              take WORK/lock (several runs may build the
#                               same image at once: one builds, the others
#                               wait and then find it up to date and exit
#                               0); set $build (a new directory in WORK)
#                               and $tmp_out (OUT.tmp), both removed at
#                               exit; WORK/debs is the .deb cache
#   img_fat FAT MIB START_MIB APPEND KERNEL INITRD
#                               a FAT16 boot partition image with
#                               syslinux.cfg, the kernel and the initrd
#   img_ext4 EXT MIB LABEL DIR  an ext4 partition image of MIB MiB holding
#                               a copy of DIR (mkfs.ext4 -d: no mounts)
#   img_assemble TMP_OUT SIZE_MIB FAT_START_MIB FAT_MIB EXT_START_MIB \
#                EXT_MIB FAT EXT
#                               an MBR disk: syslinux's mbr.bin, partition
#                               1 FAT (bootable), partition 2 ext4, unused
#                               space left sparse; syslinux installed;
#                               FAT and EXT are removed
#   img_selfcheck IMG LOG       boot IMG read-only to its marker
#                               (tests/qemu/boot.sh), or die; skipped with
#                               VMFERRY_MKIMAGE_NOCHECK=1

IMG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin

die() {
	echo "$prog: error: $*" >&2
	exit 1
}

info() {
	echo "$prog: $*" >&2
}

img_args() {
	local unit=$1 default=$2 min=$3 max=$4
	shift 4
	if [[ $# -lt 1 || $# -gt 2 || $1 == -* ]]; then
		echo "usage: $0 OUT.img [SIZE_${unit^^}]" >&2
		exit 2
	fi
	out=$1
	size=${2:-$default}
	[[ $size =~ ^[0-9]+$ ]] || die "SIZE_${unit^^} must be a number of $unit, not '$size'"
	((size >= min)) || die "SIZE_${unit^^} must be at least $min (got $size)"
	((size <= max)) || die "SIZE_${unit^^} too large for an MBR disk (got $size)"
}

missing=()
need() {
	local pkg=$1 what
	shift
	for what in "$@"; do
		if [[ $what == /* ]]; then
			[[ -e $what ]] && continue
		else
			command -v "$what" >/dev/null 2>&1 && continue
			# sbin tools may be off a non-root PATH
			[[ -x /usr/sbin/$what || -x /sbin/$what ]] && continue
		fi
		missing+=("$pkg")
		return
	done
}

# The tools every image needs: partitions, file systems, boot loader, and
# qemu for the self-check.
need_image_tools() {
	need syslinux syslinux
	need syslinux-common "$MBR_BIN"
	need mtools mcopy mdir
	need dosfstools mkfs.fat
	need e2fsprogs mkfs.ext4
	need fdisk sfdisk
	need qemu-system-x86 qemu-system-x86_64
}

install_missing() {
	if ((${#missing[@]})); then
		if ((EUID != 0)); then
			die "missing host packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})"
		fi
		info "installing missing host packages: ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
			die "apt-get install ${missing[*]} failed (has 'apt-get update' been run?)"
	fi
	PATH=$PATH:/usr/sbin:/sbin
	export MTOOLS_SKIP_CHECK=1
}

img_uptodate() {
	[[ -f $out && $out -nt $self && $out -nt $IMG_LIB_DIR/image-lib.sh ]]
}

img_begin() {
	local work=$1
	mkdir -p "$work/debs" || die "cannot create $work"
	exec 9>"$work/lock"
	flock 9 || die "cannot lock $work/lock"
	if img_uptodate; then
		exit 0
	fi
	build=$(mktemp -d "$work/build.XXXXXX")
	tmp_out="$out.tmp"
	trap 'rm -rf "$build"; rm -f "$tmp_out"' EXIT
}

img_fat() {
	local fat=$1 mib=$2 start_mib=$3 append=$4 kernel=$5 initrd=$6
	local cfg
	cfg=$(mktemp "${fat}.cfg.XXXXXX")
	cat >"$cfg" <<EOF
SERIAL 0 115200
DEFAULT vmferry
PROMPT 0
TIMEOUT 0
LABEL vmferry
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND $append
EOF
	truncate -s "${mib}M" "$fat"
	# -h: hidden sectors = partition start, what a partitioned FAT must say.
	mkfs.fat -F 16 -n VMFBOOT -h $((start_mib * 2048)) "$fat" >/dev/null ||
		die "mkfs.fat failed"
	mcopy -i "$fat" -o "$kernel" ::/vmlinuz || die "mcopy vmlinuz failed"
	mcopy -i "$fat" -o "$initrd" ::/initrd.gz || die "mcopy initrd.gz failed"
	mcopy -i "$fat" -o "$cfg" ::/syslinux.cfg || die "mcopy syslinux.cfg failed"
	rm -f "$cfg"
}

img_ext4() {
	local ext=$1 mib=$2 label=$3 dir=$4
	truncate -s "${mib}M" "$ext"
	mkfs.ext4 -q -F -L "$label" -m 0 -E nodiscard,root_owner=0:0 -d "$dir" "$ext" ||
		die "mkfs.ext4 failed"
}

img_assemble() {
	local dst=$1 size_mib=$2 fat_start=$3 fat_mib=$4 ext_start=$5 ext_mib=$6
	local fat=$7 ext=$8
	rm -f "$dst"
	truncate -s "${size_mib}M" "$dst"
	sfdisk --quiet --no-reread --no-tell-kernel "$dst" >/dev/null <<EOF || die "sfdisk failed"
label: dos
unit: sectors

start=$((fat_start * 2048)), size=$((fat_mib * 2048)), type=e, bootable
start=$((ext_start * 2048)), size=$((ext_mib * 2048)), type=83
EOF
	# Boot code only: the first 440 bytes, before the disk id and partitions.
	dd if="$MBR_BIN" of="$dst" bs=440 count=1 conv=notrunc status=none ||
		die "cannot write $MBR_BIN"
	dd if="$fat" of="$dst" bs=1M seek="$fat_start" conv=notrunc,sparse status=none ||
		die "cannot write the FAT partition"
	dd if="$ext" of="$dst" bs=1M seek="$ext_start" conv=notrunc,sparse status=none ||
		die "cannot write the ext4 partition"
	rm -f "$fat" "$ext"
	syslinux --install --offset $((fat_start * 1048576)) "$dst" ||
		die "syslinux --install failed"
}

img_selfcheck() {
	local img=$1 log=$2
	[[ ${VMFERRY_MKIMAGE_NOCHECK:-0} != 1 ]] || return 0
	info "boot-checking the image (log: $log)"
	VMFERRY_QEMU_READONLY=1 VMFERRY_BOOT_LOG="$log" \
		"$IMG_LIB_DIR/boot.sh" "$img" >&2 || die "the new image does not boot (see $log)"
}
