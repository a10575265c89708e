#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# make bench: seconds to a booted VM, vmferry side by side with what a
# user would pick instead, all in one run (ratios, not absolute times:
# this machine is noisy).  Writes bench/results/RESULTS.md (medians with
# min and max), bench/results/raw.csv and bench/results/boot.png.
#
# Contenders, each booting the test image (tests/qemu/mkimage.sh) to its
# marker line through QEMU (tests/qemu/boot.sh):
#   local        the file on local disk (the floor)
#   download     curl of the whole image, then boot from the copy
#   qemu-curl    QEMU's own curl block driver straight from the URL
#   httpdirfs    httpdirfs (FUSE over HTTP) serving the file
#   nbdkit-curl  nbdkit's curl plugin, QEMU on its NBD socket
#   vmferry-cold a vmferry mount with an empty cache
#   vmferry-warm the same with the copy complete
# The peers read from nginx over HTTPS on 127.0.0.1, vmferry from
# vmferry-server; both use the same certificate.  Figures: seconds to the
# marker, and the bytes the server sent meanwhile.
#
# Links: loopback only for now (issue 6 adds shaped and far links).
# Usage: bench/bench.sh [RUNS]  (default 3; make bench runs it)
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
IMG=$TOP/build/test-image/test.img
[ -f "$IMG" ] || fail "no test image: make test-image"
OUT=${BENCH_OUT:-$TOP/bench/results}
mkdir -p "$OUT"
export VMFERRY_ACCEL=${VMFERRY_ACCEL:-$("$TOP/tests/qemu/accel.sh" "$IMG")}
# cache=writeback for everyone: QEMU's default, and httpdirfs cannot do
# O_DIRECT.
export VMFERRY_QEMU_READONLY=1 VMFERRY_QEMU_CACHE=writeback VMFERRY_BOOT_LOG=/dev/null
size=$(stat -c %s "$IMG")

start_server "$T/srv"
import_image testvm "$IMG"

# nginx over HTTPS on a free port of 127.0.0.1, with the same certificate.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(free_port)
mkdir -p "$T/www" "$T/nginx"
ln -s "$IMG" "$T/www/test.img"
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
		listen 127.0.0.1:$NGINX_PORT ssl;
		ssl_certificate $T/srv/cert.pem;
		ssl_certificate_key $T/srv/key.pem;
		root $T/www;
		disable_symlinks off;
		autoindex on; # httpdirfs lists the directory
	}
}
CONF
nginx -c "$T/nginx/nginx.conf" -e "$T/logs/nginx-error.log" >"$T/logs/nginx.out" 2>&1 &
NGINX_PID=$!
stop_nginx() { kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true; }
cleanup_fn stop_nginx
URL="https://127.0.0.1:$NGINX_PORT/test.img"
for ((i = 0; i < 100; i++)); do
	curl -sf --cacert "$CACERT" -o /dev/null -r 0-0 "$URL" && break
	sleep 0.1
done
curl -sf --cacert "$CACERT" -o /dev/null -r 0-0 "$URL" || fail "nginx does not serve $URL"

secs() { sed -n 's/.*marker after \([0-9.]*\) s.*/\1/p' "$1"; }
nginx_bytes() { awk '{s += $1} END {print s + 0}' "$T/nginx/access.log"; }
boot() { # boot LOGNAME IMAGE: seconds to the marker; fails quietly
	"$TOP/tests/qemu/boot.sh" "$2" >"$T/logs/boot-$1.out" 2>&1 || return 1
	secs "$T/logs/boot-$1.out"
}

# Each contender prints "SECONDS BYTES".
run_local() { echo "$(boot local "$IMG") 0"; }
run_download() {
	: >"$T/nginx/access.log"
	local s e b
	s=$(date +%s.%N)
	curl -sf --cacert "$CACERT" -o "$T/dl.img" "$URL" || return 1
	e=$(date +%s.%N)
	b=$(boot download "$T/dl.img") || return 1
	rm -f "$T/dl.img"
	echo "$(echo "$e - $s + $b" | bc) $(nginx_bytes)"
}
run_qemu_curl() {
	: >"$T/nginx/access.log"
	local t
	t=$(VMFERRY_QEMU_DRIVE="file.driver=https,file.url=$URL,file.sslverify=off" \
		boot qemu-curl qemu-curl)
	echo "$t $(nginx_bytes)"
}
run_httpdirfs() {
	: >"$T/nginx/access.log"
	rm -rf "$T/hd-cache"
	mkdir -p "$T/hd"
	httpdirfs --insecure-tls "https://127.0.0.1:$NGINX_PORT/" "$T/hd" >"$T/logs/httpdirfs.log" 2>&1 ||
		fail "httpdirfs: $(cat "$T/logs/httpdirfs.log")"
	local t st=0
	t=$(boot httpdirfs "$T/hd/test.img") || st=1
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
vmferry_boot() { # vmferry_boot NAME: boot from the mount; cache as it is
	local before t st=0
	before=$(server_stat bytes_sent)
	mount_image "$SERVER_URL/testvm" "$T/mnt" --read-only
	t=$(boot "$1" "$T/mnt/testvm.img") || st=1
	unmount "$T/mnt"
	[ $st = 0 ] && echo "$t $(($(server_stat bytes_sent) - before))"
}
run_vmferry_cold() { rm -rf "$T/cache"; vmferry_boot vmferry-cold; }
run_vmferry_warm() {
	if [ ! -d "$T/cache" ]; then
		mount_image "$SERVER_URL/testvm" "$T/mnt" --read-only
		wait_hydrated 600
		unmount "$T/mnt"
	fi
	vmferry_boot vmferry-warm
}

CONTENDERS=(local download qemu_curl httpdirfs nbdkit vmferry_cold vmferry_warm)
echo "link,contender,run,seconds,bytes" >"$OUT/raw.csv"
for run in $(seq "$RUNS"); do
	for c in "${CONTENDERS[@]}"; do
		if ! r=$("run_$c") || [ -z "$r" ]; then
			echo "loopback run $run: ${c//_/-} FAILED (see $T/logs)"
			echo "loopback,${c//_/-},$run,failed,0" >>"$OUT/raw.csv"
			continue
		fi
		echo "loopback run $run: ${c//_/-} ${r% *} s, $(( ${r#* } / 1048576 )) MiB from the server"
		echo "loopback,${c//_/-},$run,${r% *},${r#* }" >>"$OUT/raw.csv"
		# The warm contender needs a complete copy: rebuild it after a
		# cold run wiped it.
		[ "$c" = vmferry_cold ] && rm -rf "$T/cache"
	done
done

python3 - "$OUT/raw.csv" "$OUT/RESULTS.md" "$VMFERRY_ACCEL" "$RUNS" "$size" <<'PY'
import csv, statistics, sys, datetime
raw, out, accel, runs, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rows = list(csv.DictReader(open(raw)))
by = {}
failed = {}
for r in rows:
    key = (r["link"], r["contender"])
    if r["seconds"] == "failed":
        failed[key] = failed.get(key, 0) + 1
        by.setdefault(key, [])
        continue
    by.setdefault(key, []).append((float(r["seconds"]), int(r["bytes"])))
with open(out, "w") as f:
    f.write("# vmferry benchmark results\n\n")
    f.write(f"Written by `make bench` on {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC: the 1 GiB "
            f"test image ({size // 1048576} MiB) booted to its marker line, {runs} runs per contender, "
            f"interleaved; QEMU accelerator: {accel}.  Seconds to the marker (median, min-max) and the "
            "bytes the server sent meanwhile (median).  Ratios are against the fastest peer in the same run.\n\n")
    for link in sorted({k[0] for k in by}):
        peers = {c: statistics.median(s for s, _ in v) for (l, c), v in by.items()
                 if l == link and v and c not in ("local", "vmferry-cold", "vmferry-warm")}
        best = min(peers.values()) if peers else None
        f.write(f"## {link}\n\n| contender | seconds (median) | min | max | MiB sent | vs fastest peer |\n|---|---|---|---|---|---|\n")
        for (l, c), v in by.items():
            if l != link:
                continue
            if not v:
                f.write(f"| {c} | failed ({failed.get((l, c), 0)} of {runs} runs did not boot) | | | | |\n")
                continue
            s = [x for x, _ in v]
            b = statistics.median(y for _, y in v)
            if failed.get((l, c)):
                c = f"{c} ({failed[(l, c)]} failed runs)"
            ratio = f"{statistics.median(s) / best:.2f}x" if best else "-"
            f.write(f"| {c} | {statistics.median(s):.2f} | {min(s):.2f} | {max(s):.2f} | {b / 1048576:.0f} | {ratio} |\n")
        f.write("\n")
print(open(out).read())
PY

if command -v gnuplot >/dev/null; then
	awk -F, 'NR > 1 && $4 != "failed" {print $2, $4}' "$OUT/raw.csv" |
		python3 -c 'import sys, statistics
d = {}
for l in sys.stdin:
    c, s = l.split(); d.setdefault(c, []).append(float(s))
for c, v in d.items(): print(c, statistics.median(v), min(v), max(v))' >"$T/med.dat"
	gnuplot <<GP 2>"$T/logs/gnuplot.log" || echo "gnuplot failed: $(cat "$T/logs/gnuplot.log")"
set terminal png size 900,500
set output "$OUT/boot.png"
set title "Seconds to a booted VM (loopback, $VMFERRY_ACCEL), median with min-max"
set style data histograms
set style fill solid 0.6
set ylabel "seconds"
set xtics rotate by -30
set yrange [0:*]
plot "$T/med.dat" using 2:xtic(1) title "median", "" using 0:2:3:4 with yerrorbars lc rgb "black" notitle
GP
fi
echo "results: $OUT/RESULTS.md, $OUT/raw.csv, $OUT/boot.png"
