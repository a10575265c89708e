#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages vmferry needs to build, test and run the
# demo.  Idempotent: runs apt-get only when something is missing.
set -euo pipefail

pkgs=(
	build-essential pkg-config
	libfuse3-dev fuse3 liblmdb-dev lmdb-utils libcurl4-openssl-dev
	libssl-dev libmicrohttpd-dev libjansson-dev
	qemu-system-x86 qemu-utils syslinux syslinux-common mtools dosfstools
	e2fsprogs busybox-static cpio kmod fdisk curl openssl xxd bc python3 fio
	clang-format cppcheck clang libclang-rt-dev
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
