#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The read, write and memory figures of make bench (issue 6), on
# loopback, side by side in one run; writes a Markdown section to
# $BENCH_OUT/FIGURES.md (bench/bench.sh appends it to RESULTS.md).
#
#   cold sequential read: a 512 MiB random image read once through a
#     fresh mount (O_DIRECT 1 MiB, hydration on) against curl of the same
#     URL to /dev/null;
#   hydration alone: the same image, a fresh mount left to complete its
#     copy (timed by the daemon's clock from its start to the complete
#     copy, status's complete_after_s, as bench.sh does) against the
#     same curl;
#   warm sequential read and 4 KiB random-read IOPS (fio, O_DIRECT,
#     libaio, depth 16): the complete copy against the local file and
#     against a plain FUSE passthrough of it (tests/helpers/powercut.c,
#     which only adds FUSE on the read path);
#   write MB/s with one fsync, through the mount and to the local file;
#   the mount daemon's peak RSS (VmHWM) reading a 10 GiB image whole;
#   CPU seconds per GiB moved on loopback, client and server together:
#     curl's download against hydration alone (the daemon's whole life),
#     which bounds what the two cores allow when both are CPU-bound.
# Usage: bench/figures.sh [RUNS]   (default 3; medians, min-max)
#
# BENCH_BASELINE=DIR (a build directory of another commit, e.g. the one
# before a change) measures that build's client too, in the same runs,
# alternating with this one against the same server: the table then has
# a "baseline" column (a shared machine's load moves both alike).
set -euo pipefail
RUNS=${1:-${BENCH_RUNS:-3}}
TOP=$(cd "$(dirname "$0")/.." && pwd)
export VMFERRY_BUILD=${VMFERRY_BUILD:-build}
source "$TOP/tests/lib.sh"
requires_fuse
requires fio curl
OUT=${BENCH_OUT:-$TOP/bench/results}
mkdir -p "$OUT"
POWERCUT=$BUILD/tests/helpers/powercut
[ -x "$POWERCUT" ] || fail "no $POWERCUT: make first"
BASELINE=${BENCH_BASELINE:-}
[ -z "$BASELINE" ] || [ -x "$BASELINE/vmferry" ] || fail "no $BASELINE/vmferry"
NEW_VMFERRY=$VMFERRY
clients() { echo "new"; [ -z "$BASELINE" ] || echo "base"; }
use() { # use new|base: the client binary mount_image runs
	if [ "$1" = base ]; then VMFERRY=$BASELINE/vmferry; else VMFERRY=$NEW_VMFERRY; fi
	sfx=${1/new/}
	sfx=${sfx:+_$sfx}
}

start_server "$T/srv"
MIB=$((1024 * 1024))
head -c $((512 * MIB)) /dev/urandom >"$T/data/r.raw"
import_image rnd "$T/data/r.raw"
now() { date +%s.%N; }
mibs() { echo "scale=1; $3 / ($2 - $1) / $MIB" | bc; } # mibs START END BYTES
csv=$T/figures.csv
: >"$csv"
put() { echo "$1,$2" >>"$csv"; echo "$1: ${2:-failed}"; }
HZ=$(getconf CLK_TCK)
cpu() { # cpu PID: the process's user + system CPU seconds so far
	awk -v hz="$HZ" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}
gib_cpu() { # gib_cpu SECONDS...: their sum per GiB of the 512 MiB image
	echo "scale=3; ($(
		IFS=+
		echo "$*"
	)) * 2" | bc
}

fio_run() { # fio_run FILE RW BS: MiB/s (sequential) or IOPS (random)
	local json
	json=$(fio --name=b --filename="$1" --rw="$2" --bs="$3" --direct=1 \
		--ioengine=libaio --iodepth=16 --runtime=8 --time_based \
		--size=512M --readonly --output-format=json 2>/dev/null) || return 1
	python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]
print("%.0f" % j["iops"] if sys.argv[1] == "randread" else "%.1f" % (j["bw_bytes"] / 1048576))' "$2" <<<"$json"
}

for run in $(seq "$RUNS"); do
	# Cold sequential read against curl.
	s=$(now)
	c0=$(cpu "$SERVER_PID")
	/usr/bin/time -f '%U %S' -o "$T/curl.cpu" \
		curl -sS --cacert "$CACERT" -H "Authorization: Bearer $(cat "$ADMIN_TOKEN_FILE")" \
		-o /dev/null "$SERVER_URL/v1/images/rnd/versions/1/data"
	put curl_seq "$(mibs "$s" "$(now)" $((512 * MIB)))"
	read -r cu cs <"$T/curl.cpu"
	put cpu_curl_client "$(gib_cpu "$cu" "$cs")"
	put cpu_curl_server "$(gib_cpu "$(cpu "$SERVER_PID")" "-$c0")"
	for c in $(clients); do
		use "$c"
		rm -rf "$T/cache"
		# No boot profile: the first run's unmount uploads one, and a
		# later run would prefetch it instead of reading cold.
		mount_image "$SERVER_URL/rnd" "$T/mnt" --read-only --no-profile
		s=$(now)
		dd if="$T/mnt/rnd.img" of=/dev/null bs=1M iflag=direct status=none
		put "cold_seq$sfx" "$(mibs "$s" "$(now)" $((512 * MIB)))"
		wait_hydrated 600
		# Warm: the complete copy, the local file, a FUSE passthrough.
		put "warm_seq$sfx" "$(fio_run "$T/mnt/rnd.img" read 1M)"
		put "warm_iops$sfx" "$(fio_run "$T/mnt/rnd.img" randread 4k)"
		unmount "$T/mnt"
		# Hydration alone.
		rm -rf "$T/cache"
		s=$(now)
		c0=$(cpu "$SERVER_PID")
		mount_image "$SERVER_URL/rnd" "$T/mnt" --read-only --no-profile
		wait_hydrated 600
		e=$(now)
		# By the daemon's clock, from its start to the complete copy
		# (a baseline build without complete_after_s: when the poll
		# above saw it).
		a=$(mount_status complete_after_s 2>/dev/null || true)
		case $a in
		'' | None) put "hydrate$sfx" "$(mibs "$s" "$e" $((512 * MIB)))" ;;
		*) put "hydrate$sfx" "$(mibs 0 "$a" $((512 * MIB)))" ;;
		esac
		put "cpu_hydrate_client$sfx" "$(gib_cpu "$(cpu "$MOUNT_PID")")"
		put "cpu_hydrate_server$sfx" "$(gib_cpu "$(cpu "$SERVER_PID")" "-$c0")"
		unmount "$T/mnt"
	done
	use new
	put local_seq "$(fio_run "$T/data/r.raw" read 1M)"
	put local_iops "$(fio_run "$T/data/r.raw" randread 4k)"
	mkdir -p "$T/pt"
	"$POWERCUT" "$T/data" "$T/pt" >"$T/logs/powercut.log" 2>&1 &
	pt_pid=$!
	for ((i = 0; i < 100; i++)); do mountpoint -q "$T/pt" && break; sleep 0.1; done
	put passthrough_seq "$(fio_run "$T/pt/r.raw" read 1M)"
	put passthrough_iops "$(fio_run "$T/pt/r.raw" randread 4k)"
	fusermount3 -u "$T/pt"
	wait "$pt_pid" || true
done

# Writes with one fsync: 256 MiB through a mount of a zero image, and to
# a local file.
truncate -s $((512 * MIB)) "$T/data/zero.raw"
import_image zero "$T/data/zero.raw"
head -c $((256 * MIB)) /dev/urandom >"$T/data/src"
for run in $(seq "$RUNS"); do
	rm -rf "$T/cache"
	mount_image "$SERVER_URL/zero" "$T/mnt" --no-hydrate --sync-interval 0 --no-sync
	s=$(now)
	dd if="$T/data/src" of="$T/mnt/zero.img" bs=1M conv=notrunc,fsync status=none
	put write_fsync "$(mibs "$s" "$(now)" $((256 * MIB)))"
	unmount "$T/mnt"
	"$VMFERRY_SERVER" lease break "$T/srv" zero >/dev/null
	cp --sparse=always "$T/data/zero.raw" "$T/data/local.raw"
	s=$(now)
	dd if="$T/data/src" of="$T/data/local.raw" bs=1M conv=notrunc,fsync status=none
	put local_write_fsync "$(mibs "$s" "$(now)" $((256 * MIB)))"
done

# Peak RSS of the mount daemon for a 10 GiB image (1 GiB of data spread
# over it), read whole (and hydrated: the daemon's whole life).
truncate -s $((10 * 1024 * MIB)) "$T/data/big.raw"
for i in $(seq 0 15); do
	dd if=/dev/urandom of="$T/data/big.raw" bs=1M count=64 seek=$((i * 640)) conv=notrunc status=none
done
import_image big "$T/data/big.raw"
for c in $(clients); do
	use "$c"
	rm -rf "$T/cache"
	mount_image "$SERVER_URL/big" "$T/mnt" --read-only --no-profile
	dd if="$T/mnt/big.img" of=/dev/null bs=1M iflag=direct status=none
	wait_hydrated 900
	hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$MOUNT_PID/status")
	anon=$(awk '/^RssAnon/ {print $2}' "/proc/$MOUNT_PID/status")
	put "rss_10g_hwm_kib$sfx" "$hwm"
	put "rss_10g_anon_kib$sfx" "$anon"
	unmount "$T/mnt"
done
use new

python3 - "$csv" "$OUT/FIGURES.md" <<'PY'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    k, v = line.strip().split(",")
    if v:  # a failed measurement is left out (and shows as "-")
        vals.setdefault(k, []).append(float(v))
def m(k):
    v = vals.get(k, [])
    return statistics.median(v) if v else float("nan")
def cell(k, unit):
    v = vals.get(k, [])
    if not v:
        return "-"
    return f"{statistics.median(v):.0f} {unit} ({min(v):.0f}-{max(v):.0f})"
base = any(k.endswith("_base") for k in vals)
def b(k, unit, ref=None, what=""):  # the baseline build's cell
    v = vals.get(k + "_base", [])
    if not v:
        return "-"
    c = cell(k + "_base", unit)
    return c + (f", {m(k + '_base') / m(ref):.2f}x {what}" if ref else "")
baseline = {
    "cold": b("cold_seq", "MiB/s", "curl_seq", "curl"),
    "hydrate": b("hydrate", "MiB/s", "curl_seq", "curl"),
    "warm": b("warm_seq", "MiB/s", "passthrough_seq", "the passthrough"),
    "iops": b("warm_iops", "IOPS", "passthrough_iops", "the passthrough"),
    "write": "-",
    "cpu": "-",
    "rss": f"{m('rss_10g_hwm_kib_base') / 1024:.0f} MiB" if vals.get("rss_10g_hwm_kib_base") else "-",
}
rows = [
    ("cold sequential read, 512 MiB, through a fresh mount", cell("cold_seq", "MiB/s"),
     f"{m('cold_seq') / m('curl_seq'):.2f}x curl ({cell('curl_seq', 'MiB/s')})", "at least 0.80x curl", m('cold_seq') / m('curl_seq') >= 0.8),
    ("hydration alone, 512 MiB, from the mount's start", cell("hydrate", "MiB/s"),
     f"{m('hydrate') / m('curl_seq'):.2f}x curl", "at least 0.90x curl", m('hydrate') / m('curl_seq') >= 0.9),
    ("warm sequential read (fio, 1 MiB, O_DIRECT)", cell("warm_seq", "MiB/s"),
     f"{m('warm_seq') / m('passthrough_seq'):.2f}x a FUSE passthrough ({cell('passthrough_seq', 'MiB/s')}); local {cell('local_seq', 'MiB/s')}",
     "at least 0.70x the passthrough", m('warm_seq') / m('passthrough_seq') >= 0.7),
    ("warm 4 KiB random read (fio, depth 16)", cell("warm_iops", "IOPS"),
     f"{m('warm_iops') / m('passthrough_iops'):.2f}x the passthrough ({cell('passthrough_iops', 'IOPS')}); local {cell('local_iops', 'IOPS')}", "-", None),
    ("write, 256 MiB with one fsync", cell("write_fsync", "MiB/s"),
     f"{m('write_fsync') / m('local_write_fsync'):.2f}x the local file ({cell('local_write_fsync', 'MiB/s')})", "-", None),
    ("CPU seconds per GiB moved (client + server, both on this machine's 2 cores)",
     f"{m('cpu_hydrate_client') + m('cpu_hydrate_server'):.2f} s (hydration: daemon {m('cpu_hydrate_client'):.2f}, server {m('cpu_hydrate_server'):.2f})",
     f"curl's download {m('cpu_curl_client') + m('cpu_curl_server'):.2f} s (curl {m('cpu_curl_client'):.2f}, server {m('cpu_curl_server'):.2f}): "
     f"{(m('cpu_curl_client') + m('cpu_curl_server')) / (m('cpu_hydrate_client') + m('cpu_hydrate_server')):.2f}x, the most vmferry's rate can reach of curl's where both are CPU-bound",
     "-", None),
    ("mount daemon peak RSS, 10 GiB image read whole", f"{m('rss_10g_hwm_kib') / 1024:.0f} MiB",
     f"of which anonymous {m('rss_10g_anon_kib') / 1024:.0f} MiB at the end (the rest: shared libraries and LMDB pages mapped at the time)", "under 100 MiB", m('rss_10g_hwm_kib') / 1024 < 100),
]
with open(sys.argv[2], "w") as f:
    f.write("## Read, write and memory figures (loopback)\n\n")
    f.write("`bench/figures.sh`: medians (min-max) over the runs, each figure side by side with its reference in the same run.\n\n")
    if base:
        f.write("| figure | vmferry | against | target | met | baseline build, same runs |\n|---|---|---|---|---|---|\n")
    else:
        f.write("| figure | vmferry | against | target | met |\n|---|---|---|---|---|\n")
    for (name, v, against, target, ok), key in zip(rows, baseline):
        met = "-" if ok is None else ("yes" if ok else "**no**")
        extra = f" {baseline[key]} |" if base else ""
        f.write(f"| {name} | {v} | {against} | {target} | {met} |{extra}\n")
    f.write("\n")
print(open(sys.argv[2]).read())
PY
