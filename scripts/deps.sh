#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian packages vmferry needs to build, test and run the
# demo.  Idempotent: runs apt-get only when something is missing.
set -euo pipefail

pkgs=(
	build-essential pkg-config
	libfuse3-dev fuse3 liblmdb-dev lmdb-utils libcurl4-openssl-dev
	libssl-dev libmicrohttpd-dev libjansson-dev libzstd-dev zstd
	qemu-system-x86 qemu-utils syslinux syslinux-common mtools dosfstools
	e2fsprogs busybox-static cpio kmod fdisk curl openssl xxd bc python3 fio
	clang-format cppcheck clang libclang-rt-dev
	qemu-block-extra
	# make bench: the peers and the chart (bench/bench.sh)
	nginx-light httpdirfs nbdkit gnuplot-nox iproute2
	# its large Debian image (bench/mkimage-debian.sh)
	mmdebstrap
	# plain-server tests (tests/integration/06x): an FTP server
	python3-pyftpdlib
	# the server's web page, driven in headless Chromium (tests/web/)
	chromium chromium-driver python3-selenium
	# the display in the web page: noVNC (served from /usr/share/novnc)
	novnc
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
# No package starts a service while we install (nginx would listen on
# port 80 of every interface): policy-rc.d says no, for this run only.
prc=/usr/sbin/policy-rc.d
if [ ! -e "$prc" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$prc"
	chmod 755 "$prc"
	trap 'rm -f "$prc"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
# ...nor at the next boot: the bench starts its own nginx on 127.0.0.1.
if command -v systemctl >/dev/null && systemctl list-unit-files nginx.service >/dev/null 2>&1; then
	systemctl disable nginx.service >/dev/null 2>&1 || true
fi
