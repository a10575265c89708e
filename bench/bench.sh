#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: seconds to a booted VM, vmferry side by side with what a
# user would pick instead, all in one run (ratios, not absolute times:
# this machine is noisy).  Writes bench/results/RESULTS.md (medians with
# min and max), bench/results/raw.csv and bench/results/boot-IMAGE.png.
#
# Images (BENCH_IMAGES, default both):
#   small        the test image (tests/qemu/mkimage.sh): 1 GiB virtual, a
#                busybox initramfs that checks 64 MiB of files
#   large        the Debian image (bench/mkimage-debian.sh, built here if
#                absent): 4 GiB virtual, Debian 12 booting through systemd
#                and reading a few hundred MiB
# Contenders, each booting the image to its marker line through QEMU
# (tests/qemu/boot.sh):
#   local        the file on local disk (the floor)
#   download     curl of the whole image, then boot from the copy
#   qemu-curl    QEMU's own curl block driver straight from the URL
#   httpdirfs    httpdirfs (FUSE over HTTP) serving the file
#   nbdkit-curl  nbdkit's curl plugin, QEMU on its NBD socket
#   vmferry-cold a vmferry mount with an empty cache, no boot profile
#                (compression as the default, --compress=auto, decides)
#   vmferry-profiled  the same, with the image's boot profile prefetched
#                (recorded by one untimed boot first)
#   vmferry-warm the same with the copy complete
#   vmferry-nozstd  vmferry-cold with compressed transfer off
#                (--no-compress), for the bytes and seconds zstd saves
# The peers read from nginx over HTTPS, vmferry from vmferry-server; both
# use the same certificate and run in a network namespace behind a veth
# pair (bench/link.sh).  Figures: seconds to the marker, the bytes the
# server sent meanwhile, the bytes the guest read (vmferry's counter),
# the plain download's rate and vmferry's hydration rate alone.
#
# Links (BENCH_LINKS, default all four): loopback (the veth unshaped),
# 100mbit and 20mbit (tc tbf on both ends), far (100mbit plus 40 ms round
# trip from bench/delayproxy.py).  The local file boots on every link,
# although it does not use it: it is the floor of the profiled boot's
# target, and this machine's boots drift by a third between one link's
# pass and the next (the large image's local boot: 37-47 s in one pass,
# its warm vmferry boot 52-60 s in the next).  bench/report.py writes
# RESULTS.md with the targets.
# Usage: bench/bench.sh [RUNS]  (default 3; make bench runs it)
#   BENCH_IMAGES="large"        a subset of images
#   BENCH_LINKS="loopback far"  a subset of links
#   BENCH_OUT=DIR               where the results go
#   BENCH_CONTENDERS="local vmferry_cold"  a subset of contenders
#   BENCH_FIGURES=0             skip bench/figures.sh (read, write, RSS)
#   BENCH_BASELINE=DIR          a build directory of another commit: a
#                               vmferry contender named with _base (e.g.
#                               vmferry_cold_base) runs that build's
#                               client, interleaved in the same runs with
#                               this one against the same server (rows
#                               vmferry-cold-base, hydrate-base)
#   BENCH_ONCE_SECS=600         a contender whose first run on an image and
#                               link takes longer runs only once there (a
#                               download of 4 GiB on 20 Mbit/s is 29 min)
# raw.csv keeps the rows of the images and links this run does not
# measure, so subsets add up to one RESULTS.md.
set -euo pipefail
RUNS=${1:-${BENCH_RUNS:-3}}
TOP=$(cd "$(dirname "$0")/.." && pwd)
export VMFERRY_BUILD=${VMFERRY_BUILD:-build}
source "$TOP/tests/lib.sh"
requires_fuse
requires nginx
requires httpdirfs
requires nbdkit
requires curl
IMAGES=(${BENCH_IMAGES:-small large})
ONCE_SECS=${BENCH_ONCE_SECS:-600}
BASELINE=${BENCH_BASELINE:-}
[ -z "$BASELINE" ] || [ -x "$BASELINE/vmferry" ] || fail "no $BASELINE/vmferry"
NEW_VMFERRY=$VMFERRY
# image_file IMAGE: the image's path; image_name IMAGE: its name on the
# servers (vmferry-server's image, nginx's file without .img).
image_file() {
	case $1 in
	small) echo "$TOP/build/test-image/test.img" ;;
	large) echo "$TOP/build/bench-image/debian.img" ;;
	*) fail "unknown image '$1' in BENCH_IMAGES (want small, large)" ;;
	esac
}
image_name() {
	case $1 in small) echo testvm ;; large) echo debianvm ;; esac
}
for IMAGE in "${IMAGES[@]}"; do
	f=$(image_file "$IMAGE")
	if [ "$IMAGE" = large ]; then
		# Builds it when absent or older than its script (minutes).
		"$TOP/bench/mkimage-debian.sh" "$f" || fail "building the large image"
	fi
	[ -f "$f" ] || fail "no $IMAGE image $f: make test-image"
done
OUT=${BENCH_OUT:-$TOP/bench/results}
mkdir -p "$OUT"
export VMFERRY_ACCEL=${VMFERRY_ACCEL:-$("$TOP/tests/qemu/accel.sh" "$(image_file "${IMAGES[0]}")")}
# cache=writeback for everyone: QEMU's default, and httpdirfs cannot do
# O_DIRECT.  The large image through a slow peer on a slow link takes
# minutes.
export VMFERRY_QEMU_READONLY=1 VMFERRY_QEMU_CACHE=writeback VMFERRY_BOOT_LOG=/dev/null
export VMFERRY_BOOT_TIMEOUT=${VMFERRY_BOOT_TIMEOUT:-1200}

# The servers sit in a network namespace behind a veth pair, so that tc
# can shape the link between them and the clients (bench/link.sh).
source "$TOP/bench/link.sh"
link_create
cleanup_fn link_destroy
# One certificate for both servers, valid for the namespace's address
# and for 127.0.0.1 (the far link's delaying proxies).
mkdir -p "$T/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-days 2 -subj /CN=vmferry-bench \
	-addext "subjectAltName=IP:$NS_IP,IP:127.0.0.1" \
	-keyout "$T/tls/key.pem" -out "$T/tls/cert.pem" >"$T/logs/openssl.log" 2>&1 ||
	fail "openssl: $(cat "$T/logs/openssl.log")"
CACERT=$T/tls/cert.pem

server_init "$T/srv"
SERVER_DIR=$T/srv
ADMIN_TOKEN_FILE=$T/srv/admin.token
for IMAGE in "${IMAGES[@]}"; do
	import_image "$(image_name "$IMAGE")" "$(image_file "$IMAGE")"
done
ip netns exec "$NS" "$VMFERRY_SERVER" serve "$T/srv" --listen "$NS_IP:8443" \
	--cert "$T/tls/cert.pem" --key "$T/tls/key.pem" \
	--max-connections-per-address 1000 \
	--ready-file "$T/server.ready" >"$T/logs/server.log" 2>&1 &
SERVER_PID=$!
stop_bench_server() { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
cleanup_fn stop_bench_server
wait_for_file "$T/server.ready" 30 || fail "vmferry-server did not start: $(cat "$T/logs/server.log")"

# nginx over HTTPS in the namespace, with the same certificate.
mkdir -p "$T/www" "$T/nginx"
for IMAGE in "${IMAGES[@]}"; do
	ln -s "$(image_file "$IMAGE")" "$T/www/$(image_name "$IMAGE").img"
done
cat >"$T/nginx/nginx.conf" <<CONF
daemon off;
user root; # reads the test image and $T, both the bench runner's
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/logs/nginx-error.log;
events { worker_connections 256; }
http {
	log_format bytes '\$bytes_sent';
	access_log $T/nginx/access.log bytes;
	sendfile on;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	server {
		listen $NS_IP:8444 ssl;
		ssl_certificate $T/tls/cert.pem;
		ssl_certificate_key $T/tls/key.pem;
		root $T/www;
		disable_symlinks off;
		autoindex on; # httpdirfs lists the directory
	}
}
CONF
ip netns exec "$NS" nginx -c "$T/nginx/nginx.conf" -e "$T/logs/nginx-error.log" >"$T/logs/nginx.out" 2>&1 &
NGINX_PID=$!
stop_nginx() { kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; }
cleanup_fn stop_nginx

# The far link: a delaying proxy on 127.0.0.1 in front of each server.
start_delayproxy() { # start_delayproxy PORT VAR: the proxy's port in VAR
	local ready="$T/delay-$1.ready"
	python3 "$TOP/bench/delayproxy.py" "$FAR_DELAY_MS" "$NS_IP" "$1" "$ready" \
		>"$T/logs/delay-$1.log" 2>&1 &
	DELAY_PIDS+=("$!")
	wait_for_file "$ready" 30 || fail "delayproxy: $(cat "$T/logs/delay-$1.log")"
	printf -v "$2" '%s' "$(cat "$ready")"
}
DELAY_PIDS=()
stop_delay() { local p; for p in "${DELAY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
cleanup_fn stop_delay
start_delayproxy 8443 FAR_SERVER_PORT
start_delayproxy 8444 FAR_NGINX_PORT

# use_link LINK: shape the veth and point SERVER_URL (vmferry-server) and
# WWW (nginx's directory) at the link.
use_link() {
	case $1 in
	loopback) link_shape none ;;
	far) link_shape "$FAR_RATE" ;;
	*) link_shape "$1" ;;
	esac
	if [ "$1" = far ]; then
		SERVER_URL="https://127.0.0.1:$FAR_SERVER_PORT"
		WWW="https://127.0.0.1:$FAR_NGINX_PORT"
	else
		SERVER_URL="https://$NS_IP:8443"
		WWW="https://$NS_IP:8444"
	fi
	local i URL=$WWW/$(image_name "${IMAGES[0]}").img
	for ((i = 0; i < 100; i++)); do
		curl -sf --cacert "$CACERT" -o /dev/null -r 0-0 "$URL" && break
		sleep 0.1
	done
	curl -sf --cacert "$CACERT" -o /dev/null -r 0-0 "$URL" || fail "nginx does not serve $URL"
	scurl -o /dev/null "$SERVER_URL/v1/stats" || fail "vmferry-server does not answer on $SERVER_URL"
}

# use_image IMAGE: point IMG, VM (the name on the servers) and URL at it.
use_image() {
	IMG=$(image_file "$1")
	VM=$(image_name "$1")
	URL=$WWW/$VM.img
}

secs() { sed -n 's/.*marker after \([0-9.]*\) s.*/\1/p' "$1"; }
# printf: awk's print turns sums over 2^31 into 4.29497e+09
nginx_bytes() { awk '{s += $1} END {printf "%.0f\n", s}' "$T/nginx/access.log"; }
boot() { # boot LOGNAME IMAGE: seconds to the marker; fails quietly
	"$TOP/tests/qemu/boot.sh" "$2" >"$T/logs/boot-$1.out" 2>&1 || return 1
	secs "$T/logs/boot-$1.out"
}

# Each contender prints "SECONDS BYTES [GUEST_READ]": seconds to the
# marker, bytes the server sent meanwhile, and (vmferry) the bytes the
# guest read through the mount.
run_local() { echo "$(boot local "$IMG") 0"; }
run_download() {
	: >"$T/nginx/access.log"
	local s e b
	s=$(date +%s.%N)
	curl -sf --cacert "$CACERT" -o "$T/dl.img" "$URL" || return 1
	e=$(date +%s.%N)
	# The plain download's rate, for hydration's target.
	echo "$IMAGE,$LINK,curl,$run,$(echo "$e - $s" | bc),$(nginx_bytes)," >>"$OUT/raw.csv"
	b=$(boot download "$T/dl.img") || return 1
	rm -f "$T/dl.img"
	echo "$(echo "$e - $s + $b" | bc) $(nginx_bytes)"
}
run_qemu_curl() {
	: >"$T/nginx/access.log"
	local t
	t=$(VMFERRY_QEMU_DRIVE="file.driver=https,file.url=$URL,file.sslverify=off" \
		boot qemu-curl qemu-curl) || return 1
	echo "$t $(nginx_bytes)"
}
run_httpdirfs() {
	: >"$T/nginx/access.log"
	rm -rf "$T/hd-cache"
	mkdir -p "$T/hd"
	# --no-range-check: httpdirfs 1.2.5's probe for range support fails
	# on nginx ("This web server does not support HTTP range requests",
	# its issue #188) although nginx serves ranges; reads then return 0
	# bytes.
	httpdirfs --no-range-check --insecure-tls "$WWW/" "$T/hd" >"$T/logs/httpdirfs.log" 2>&1 ||
		fail "httpdirfs: $(cat "$T/logs/httpdirfs.log")"
	local t st=0
	t=$(boot httpdirfs "$T/hd/$VM.img") || st=1
	fusermount3 -u "$T/hd"
	[ $st = 0 ] && echo "$t $(nginx_bytes)"
}
run_nbdkit() {
	: >"$T/nginx/access.log"
	rm -f "$T/nbd.sock"
	nbdkit -U "$T/nbd.sock" -P "$T/nbd.pid" curl url="$URL" sslverify=false \
		>"$T/logs/nbdkit.log" 2>&1 || fail "nbdkit: $(cat "$T/logs/nbdkit.log")"
	local t st=0
	t=$(VMFERRY_QEMU_DRIVE="file.driver=nbd,file.server.type=unix,file.server.path=$T/nbd.sock" \
		boot nbdkit nbdkit) || st=1
	kill "$(cat "$T/nbd.pid")"
	[ $st = 0 ] && echo "$t $(nginx_bytes)"
}
vmferry_boot() { # vmferry_boot NAME [MOUNT OPTIONS]: boot from the mount
	local name=$1 before t st=0 sent rd
	shift
	before=$(server_stat bytes_sent)
	mount_image "$SERVER_URL/$VM" "$T/mnt" --read-only "$@"
	t=$(boot "$name" "$T/mnt/$VM.img") || st=1
	sent=$(($(server_stat bytes_sent) - before))
	rd=$(mount_status read_bytes)
	unmount "$T/mnt"
	[ $st = 0 ] && echo "$t $sent $rd"
}
# Cold: an empty cache, no boot profile (recorded nor used).
run_vmferry_cold() { rm -rf "$T/cache"; vmferry_boot vmferry-cold --no-profile; }
# The same, the blocks sent as they are (no zstd ranges).
run_vmferry_nozstd() {
	rm -rf "$T/cache"
	vmferry_boot vmferry-nozstd --no-profile --no-compress
}
# Cold with the image's boot profile: recorded once by a boot that is
# not timed (its mount uploads the profile at unmount), then prefetched.
run_vmferry_profiled() {
	if [ ! -e "$T/profile-recorded-$VM" ]; then
		rm -rf "$T/cache"
		vmferry_boot vmferry-recording >/dev/null || return 1
		touch "$T/profile-recorded-$VM"
	fi
	rm -rf "$T/cache"
	vmferry_boot vmferry-profiled
}
run_vmferry_warm() {
	if [ ! -d "$T/cache" ]; then
		# Build the complete copy, timing hydration on its own: from
		# the daemon's start (key, connections, lease, manifest
		# included) to the moment it found the copy complete, by its
		# own clock (complete_after_s), not by when a status poll
		# every 0.1 s noticed.
		local t before
		before=$(server_stat bytes_sent)
		mount_image "$SERVER_URL/$VM" "$T/mnt" --read-only --no-profile
		wait_hydrated 1200
		t=$(mount_status complete_after_s)
		echo "$IMAGE,$LINK,hydrate${SFX:-},$run,$t,$(($(server_stat bytes_sent) - before))," >>"$OUT/raw.csv"
		unmount "$T/mnt"
	fi
	vmferry_boot vmferry-warm --no-profile
}

LINKS=(${BENCH_LINKS:-loopback 100mbit 20mbit far})
CONTENDERS=(${BENCH_CONTENDERS:-local download qemu_curl httpdirfs nbdkit vmferry_cold vmferry_nozstd vmferry_profiled vmferry_warm})
# raw.csv: this run's rows after the kept rows of the images and links
# it does not measure (rows from before images had a column are the
# small image's).  images.csv: each image's virtual and allocated bytes.
python3 "$TOP/bench/report.py" --merge "$OUT/raw.csv" "${IMAGES[*]}" "${LINKS[*]}" ||
	fail "merging raw.csv"
{
	echo "image,virtual,allocated"
	[ -f "$OUT/images.csv" ] && grep -v '^image,' "$OUT/images.csv" |
		grep -vE "^($(
			IFS='|'
			echo "${IMAGES[*]}"
		))," || true
	for IMAGE in "${IMAGES[@]}"; do
		f=$(image_file "$IMAGE")
		echo "$IMAGE,$(stat -L -c %s "$f"),$(du -L -B1 "$f" | cut -f1)"
	done
} >"$T/images.csv"
mv "$T/images.csv" "$OUT/images.csv"

declare -A once # IMAGE/LINK/contender: its first run took over ONCE_SECS
for LINK in "${LINKS[@]}"; do
	use_link "$LINK"
	echo "== link $LINK: vmferry-server $SERVER_URL, nginx $WWW"
	for run in $(seq "$RUNS"); do
		for IMAGE in "${IMAGES[@]}"; do
			use_image "$IMAGE"
			rm -rf "$T/cache"
			for c in "${CONTENDERS[@]}"; do
				if [ -n "${once[$IMAGE/$LINK/$c]:-}" ]; then
					echo "$IMAGE $LINK run $run: ${c//_/-} skipped (its first run took ${once[$IMAGE/$LINK/$c]} s > BENCH_ONCE_SECS=$ONCE_SECS)"
					continue
				fi
				# A _base contender: the baseline's client, and
				# a cache of its own.
				if [ "${c%_base}" != "$c" ]; then
					[ -n "$BASELINE" ] || fail "$c needs BENCH_BASELINE"
					[ "$VMFERRY" = "$BASELINE/vmferry" ] || rm -rf "$T/cache"
					VMFERRY=$BASELINE/vmferry SFX=-base
				else
					[ "$VMFERRY" = "$NEW_VMFERRY" ] || rm -rf "$T/cache"
					VMFERRY=$NEW_VMFERRY SFX=
				fi
				if ! r=$("run_${c%_base}") || [ -z "$r" ]; then
					# $T goes at exit: keep the logs.
					kept=$(mktemp -d /tmp/vmferry-bench-failed.XXXXXX)
					cp -r "$T/logs" "$kept/"
					echo "$IMAGE $LINK run $run: ${c//_/-} FAILED (logs in $kept/logs)"
					echo "$IMAGE,$LINK,${c//_/-},$run,failed,0," >>"$OUT/raw.csv"
					continue
				fi
				read -r sec sent rd <<<"$r"
				echo "$IMAGE $LINK run $run: ${c//_/-} $sec s, $((sent / 1048576)) MiB from the server${rd:+, guest read $((rd / 1048576)) MiB}"
				echo "$IMAGE,$LINK,${c//_/-},$run,$sec,$sent,${rd:-}" >>"$OUT/raw.csv"
				if [ "$run" = 1 ] && [ "$(echo "$sec > $ONCE_SECS" | bc)" = 1 ]; then
					once[$IMAGE/$LINK/$c]=$sec
				fi
				# The warm contender needs a complete copy: rebuild it
				# after a cold run wiped it.
				case ${c%_base} in vmferry_cold | vmferry_nozstd | vmferry_profiled) rm -rf "$T/cache" ;; esac
			done
		done
	done
done
link_shape none

# The read, write and memory figures (loopback): BENCH_FIGURES=0 skips
# them (RESULTS.md then keeps the last FIGURES.md).
if [ "${BENCH_FIGURES:-1}" = 1 ]; then
	"$TOP/bench/figures.sh" "$RUNS" >"$T/logs/figures.log" 2>&1 ||
		echo "bench/figures.sh failed: see $T/logs/figures.log" >"$OUT/FIGURES.md"
fi
python3 "$TOP/bench/report.py" "$OUT/raw.csv" "$OUT/RESULTS.md" "$VMFERRY_ACCEL" "$T" || fail "report"
cat "$OUT/RESULTS.md"

if command -v gnuplot >/dev/null; then
	for dat in "$T"/boot-*.dat; do
		img=$(basename "$dat" .dat)
		img=${img#boot-}
		nlinks=$(($(head -n 1 "$dat" | wc -w) - 1))
		gnuplot <<GP 2>"$T/logs/gnuplot.log" || echo "gnuplot failed: $(cat "$T/logs/gnuplot.log")"
set terminal png size 1000,540
set output "$OUT/boot-$img.png"
set title "Seconds to a booted VM per contender and link, $img image ($VMFERRY_ACCEL), median"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set datafile missing "?"
set key top left
set ylabel "seconds"
set xtics rotate by -30
set logscale y # a download on 20 Mbit/s takes minutes, a boot seconds
plot for [i=2:$((nlinks + 1))] "$dat" using i:xtic(1) title columnheader(i)
GP
	done
fi
echo "results: $OUT/RESULTS.md, $OUT/raw.csv, $OUT/boot-*.png"
