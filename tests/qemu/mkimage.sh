#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Build a small bootable raw disk image for the QEMU boot tests and the demo,
# from Debian packages only (no network beyond the apt mirror, no loop mounts,
# nothing installed into the host but missing build tools).
#
#   tests/qemu/mkimage.sh OUT.img [SIZE_MIB]        (default 1024 MiB)
#
# Layout (MBR):
#   sector 0      syslinux mbr.bin + partition table
#   partition 1   FAT16, bootable, 64 MiB at 1 MiB: syslinux, the Debian
#                 cloud kernel (linux-image-cloud-amd64, unpacked with
#                 dpkg-deb, never installed) and a busybox initramfs that
#                 loads the virtio modules
#   partition 2   ext4, the rest: a few files of random data (64 MiB in all)
#                 and SHA256SUMS, their manifest
#
# At boot, /init in the initramfs mounts partition 2 read-only, checks every
# file against the manifest (so a boot reads the data through virtio) and
# prints VMFERRY-LAST <token> if the file last-boot exists there.  If the
# drive is writable (not qemu readonly=on), it remounts partition 2
# read-write, writes a new random token to last-boot, prints
# VMFERRY-WROTE <token> and unmounts.  Last comes one marker line on
# ttyS0, VMFERRY-BOOT-OK or VMFERRY-BOOT-FAIL <reason>, then it powers off.
# tests/qemu/boot.sh watches for the marker.  Unused space is left as zeros (and sparse in OUT): zero blocks are
# never transferred, so the image is mostly free to serve.
#
# Downloaded .deb files are cached in $(dirname OUT)/mkimage-work/.  If OUT
# exists and is newer than this script, nothing is done.  OUT is written as
# OUT.tmp, boot-checked with boot.sh (skip with VMFERRY_MKIMAGE_NOCHECK=1),
# then renamed into place.

set -euo pipefail

prog=mkimage
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"

source "$here/image-lib.sh"

# Geometry, in MiB.  The FAT partition starts at 1 MiB (sector 2048) as
# fdisk would place it; the ext4 partition follows and fills the disk.
fat_start_mib=1
fat_mib=64
ext_start_mib=$((fat_start_mib + fat_mib))
min_size_mib=160 # 65 MiB before ext4, 64 MiB of data, journal and tables

img_args MiB 1024 "$min_size_mib" 2097151 "$@"
size_mib=$size
ext_mib=$((size_mib - ext_start_mib))

if img_uptodate; then
	exit 0
fi

outdir=$(dirname "$out")
mkdir -p "$outdir" || die "cannot create $outdir"
out=$(cd "$outdir" && pwd)/$(basename "$out")
work=$(dirname "$out")/mkimage-work

# ---- host tools: install only what is missing --------------------------------

busybox_static() {
	local status
	status=$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null) || return 1
	[[ $status == "install ok installed" ]]
}

need_image_tools
need cpio cpio
need kmod depmod modprobe
busybox_static || missing+=(busybox-static)

install_missing

# ---- work dir, lock ---------------------------------------------------------

img_begin "$work"

# ---- kernel -----------------------------------------------------------------

# linux-image-cloud-amd64 is a metapackage; the kernel is in the versioned
# package it depends on.  Reuse a cached .deb when apt knows nothing better
# (or cannot be asked).
meta=linux-image-cloud-amd64
resolve_kpkg() {
	apt-cache depends --no-recommends --no-suggests "$meta" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !p { print $2; p = 1 }' || true
}
apt_updated=
# Package lists on a fresh machine may be missing or stale (the listed
# kernel no longer on the mirror): refresh them once, as root.
apt_update_once() {
	[[ -z $apt_updated && $EUID -eq 0 ]] || return 1
	apt_updated=1
	info "refreshing apt's package lists"
	apt-get update -q >&2
}
kpkg=$(resolve_kpkg)
if [[ -z $kpkg ]] && apt_update_once; then
	kpkg=$(resolve_kpkg)
fi
kdeb=
if [[ -n $kpkg ]]; then
	kver_apt=$(apt-cache policy "$kpkg" | awk '$1 == "Candidate:" { print $2 }')
	kdeb=$(find "$work/debs" -maxdepth 1 -name "${kpkg}_${kver_apt//:/%3a}_amd64.deb" | head -n 1)
	if [[ -z $kdeb ]]; then
		info "downloading $kpkg $kver_apt"
		# Download as root without apt's _apt sandbox warning.
		dl() { (cd "$build" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >&2); }
		if ! dl; then
			apt_update_once || die "apt-get download $kpkg failed"
			kpkg=$(resolve_kpkg)
			kver_apt=$(apt-cache policy "$kpkg" | awk '$1 == "Candidate:" { print $2 }')
			dl || die "apt-get download $kpkg failed"
		fi
		f=$(find "$build" -maxdepth 1 -name "${kpkg}_*.deb" | head -n 1)
		[[ -n $f ]] || die "apt-get download $kpkg produced no .deb"
		mv "$f" "$work/debs/"
		kdeb="$work/debs/$(basename "$f")"
	fi
else
	kdeb=$(find "$work/debs" -maxdepth 1 -name 'linux-image-[0-9]*-cloud-amd64_*.deb' | sort -V | tail -n 1)
	[[ -n $kdeb ]] || die "cannot resolve $meta with apt-cache (run 'apt-get update') and no cached kernel in $work/debs"
	info "apt cannot resolve $meta; using cached $(basename "$kdeb")"
fi

kroot="$build/kernel"
mkdir "$kroot"
dpkg-deb -x "$kdeb" "$kroot" || die "cannot unpack $kdeb"
# Debian 12 keeps modules in /lib/modules; later releases in /usr/lib/modules.
kmodroot=$kroot
if [[ ! -d $kroot/lib/modules && -d $kroot/usr/lib/modules ]]; then
	kmodroot=$kroot/usr
fi
kver=$(find "$kmodroot/lib/modules" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | head -n 1)
[[ -n $kver ]] || die "no lib/modules/VERSION in $kdeb"
vmlinuz=$kroot/boot/vmlinuz-$kver
[[ -f $vmlinuz ]] || die "no boot/vmlinuz-$kver in $kdeb"
info "kernel $kver"

# ---- initramfs --------------------------------------------------------------

initrd_dir="$build/initramfs"
mkdir -p "$initrd_dir"/{bin,sbin,dev,proc,sys,mnt,etc,lib/modules}

bb=$(dpkg -L busybox-static | awk '/\/bin\/busybox$/ && !p { print; p = 1 }')
[[ -n $bb && -x $bb ]] || die "busybox-static is installed but its busybox binary was not found"
cp "$bb" "$initrd_dir/bin/busybox"

# The kernel opens /dev/console before /init runs; give it one when we can
# (the /init script also reopens it from devtmpfs).
if ((EUID == 0)); then
	mknod -m 600 "$initrd_dir/dev/console" c 5 1
fi

# The cloud kernel has ext4 built in, but virtio (ring, PCI transport, block)
# as modules.  Ask kmod for them in dependency order, using no host config.
depmod -b "$kmodroot" "$kver" || die "depmod failed on $kdeb"
mkdir "$build/modprobe.d"
modlist="$initrd_dir/etc/modules"
: >"$modlist"
for want in virtio_pci virtio_blk; do
	deps=$(modprobe -C "$build/modprobe.d" -d "$kmodroot" -S "$kver" --show-depends "$want") ||
		die "modprobe --show-depends $want failed"
	while read -r verb path _; do
		[[ $verb == insmod ]] || continue # "builtin NAME" needs no loading
		name=$(basename "$path")
		name=${name%%.ko*}
		grep -qxF "$name" "$modlist" && continue
		case $path in
		*.ko) cp "$path" "$initrd_dir/lib/modules/$name.ko" ;;
		*.ko.xz) xz -dc "$path" >"$initrd_dir/lib/modules/$name.ko" ;;
		*.ko.zst) zstd -qdc "$path" >"$initrd_dir/lib/modules/$name.ko" ;;
		*.ko.gz) gzip -dc "$path" >"$initrd_dir/lib/modules/$name.ko" ;;
		*) die "unexpected module file $path" ;;
		esac
		echo "$name" >>"$modlist"
	done <<<"$deps"
done
grep -qx virtio_blk "$modlist" || grep -q 'builtin virtio_blk' <<<"$deps" ||
	die "virtio_blk not found in $kver"
info "modules: $(tr '\n' ' ' <"$modlist")"

cat >"$initrd_dir/init" <<'EOF'
#!/bin/busybox sh
# vmferry boot check, generated by tests/qemu/mkimage.sh.
# Prints VMFERRY-BOOT-START, VMFERRY-LAST/VMFERRY-WROTE <token> (see
# mkimage.sh), then exactly one of VMFERRY-BOOT-OK or
# VMFERRY-BOOT-FAIL <reason>, and powers off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
# Keep kernel messages from splitting our lines.
echo 1 >/proc/sys/kernel/printk

finish() {
	# A leading newline keeps the marker on a line of its own.
	echo
	echo "$1"
	sync
	poweroff -f
	# Not reached; if it were, init exiting panics the kernel and
	# panic=-1 with qemu -no-reboot ends the VM anyway.
	sleep 5
	exit 1
}

fail() {
	finish "VMFERRY-BOOT-FAIL $*"
}

for m in $(cat /etc/modules); do
	insmod "/lib/modules/$m.ko" || fail "insmod $m"
done
echo VMFERRY-BOOT-START

i=0
while [ ! -b /dev/vda2 ]; do
	i=$((i + 1))
	[ "$i" -le 300 ] || fail "no /dev/vda2 after 30 s"
	sleep 0.1
done

mount -t ext4 -o ro /dev/vda2 /mnt || fail "cannot mount /dev/vda2"
cd /mnt || fail "cannot enter /mnt"
[ -s SHA256SUMS ] || fail "no SHA256SUMS on /dev/vda2"
nfiles=$(wc -l <SHA256SUMS)
if ! result=$(sha256sum -c SHA256SUMS 2>&1); then
	bad=$(echo "$result" | grep -v ': OK$' | tr '\n' ' ')
	fail "sha256 check: ${bad% }"
fi
echo "vmferry: $nfiles files verified"
# The previous boot's token, if a boot on a writable drive left one.
if [ -f last-boot ]; then
	echo "VMFERRY-LAST $(cat last-boot)"
fi
cd /
# On a writable drive, leave a new token for the next boot.  A drive
# attached with readonly=on shows as read-only (/sys/block/vda/ro = 1):
# then nothing is written.
if [ "$(cat /sys/block/vda/ro 2>/dev/null)" = 1 ]; then
	echo "vmferry: read-only drive, not writing"
else
	mount -o remount,rw /mnt || fail "cannot remount /dev/vda2 read-write"
	token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	[ ${#token} = 32 ] || fail "cannot make a token"
	echo "$token" >/mnt/last-boot || fail "cannot write last-boot"
	sync
	[ "$(cat /mnt/last-boot)" = "$token" ] || fail "last-boot does not read back"
	echo "VMFERRY-WROTE $token"
fi
# A clean unmount, so the ext4 on the drive is consistent.
umount /mnt || fail "cannot unmount /dev/vda2"
finish VMFERRY-BOOT-OK
EOF
chmod 755 "$initrd_dir/init"

initrd="$build/initrd.gz"
(cd "$initrd_dir" && find . -print0 | LC_ALL=C sort -z |
	cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9 -n >"$initrd" ||
	die "cannot build the initramfs"

# ---- FAT boot partition -----------------------------------------------------

fat="$build/fat.img"
img_fat "$fat" "$fat_mib" "$fat_start_mib" \
	"console=ttyS0,115200 quiet loglevel=3 panic=-1" "$vmlinuz" "$initrd"

# ---- ext4 data partition ----------------------------------------------------

data="$build/data"
mkdir "$data"
# 64 MiB in all, in files of different sizes.
for spec in data-1.bin:32 data-2.bin:16 data-3.bin:8 data-4.bin:8; do
	head -c "${spec#*:}M" /dev/urandom >"$data/${spec%%:*}" ||
		die "cannot write random data"
done
(cd "$data" && sha256sum data-*.bin >SHA256SUMS)

ext="$build/ext4.img"
img_ext4 "$ext" "$ext_mib" vmfdata "$data"
rm -rf "$data"

# ---- assemble ---------------------------------------------------------------

img_assemble "$tmp_out" "$size_mib" "$fat_start_mib" "$fat_mib" "$ext_start_mib" "$ext_mib" \
	"$fat" "$ext"
rm -rf "$kroot"

# ---- self-check -------------------------------------------------------------

img_selfcheck "$tmp_out" "$work/selfcheck.log"

mv -f "$tmp_out" "$out"
info "wrote $out (${size_mib} MiB)"
