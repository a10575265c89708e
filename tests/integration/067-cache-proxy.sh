#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The scale-out read path: nginx with contrib/nginx/vmferry-cache.conf
# (the shipped file, only its paths, ports and certificates changed) in
# front of vmferry-server, TLS on both sides.
#   - 16 read-only mounts, each with its own cache, hydrate the same
#     image through the proxy at once: every copy has the image's
#     sha256, the clients received 16 copies and the origin sent about
#     one (checked against the 1 MiB slices that hold data) and one
#     manifest: manifests are cached too (clients check them against
#     the manifest_sha256 of the metadata, which is not cached);
#   - through the proxy, a cached range is refused without a token,
#     with an unknown token and with a token that may not read the
#     image (401, 401, 403), and the origin sends no data for them;
#   - a revoked token reads no more once the access cache's entry has
#     expired;
#   - a client asking for zstd gets the plain bytes (compression is off
#     through the cache);
#   - a byte changed in a cached slice on the proxy's disk gives EIO on
#     a fresh mount, never the changed bytes;
#   - a byte changed in the cached manifest refuses a fresh mount with
#     the manifest_sha256 error.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 curl nginx sha256sum
nginx -V 2>&1 | grep -q -- --with-http_slice_module ||
	{ echo "SKIP: nginx without the slice module" >&2; exit 77; }

N=16
SLICE=$((1024 * 1024))
ACCESS_SECS=3 # the access cache's validity here (shipped: 10 s)
size=$((40 * 1024 * 1024 + 12345))

start_server "$T/srv" --max-connections-per-address 512
make_image "$T/data/img.raw" "$size" 67
import_image disk "$T/data/img.raw"
import_image other "$T/data/img.raw"
WANT=$(sha256sum <"$T/data/img.raw" | cut -d' ' -f1)
tok() { "$VMFERRY_SERVER" token add "$SERVER_DIR" "$@" 2>>"$T/logs/token.log"; }
tok --name reader --read disk >"$T/reader.token"
READER=$(cat "$T/reader.token")
OTHER=$(tok --name other --read other)
DOOMED=$(tok --name doomed --read disk)
DOOMED_ID=$(sed -n 's/^added token \([0-9a-f]*\) (doomed)$/\1/p' "$T/logs/token.log")
[ -n "$DOOMED_ID" ] || fail "no token id in: $(cat "$T/logs/token.log")"

# The access route itself, on the origin: 204 without a body for read
# on NAME (whether NAME exists or not), 401 and 403 otherwise.
acc() { # acc TOKEN NAME [curl args]: the status
	local t=$1 n=$2
	shift 2
	curl -sS --cacert "$CACERT" -o "$T/body" -w '%{http_code}' \
		${t:+-H "Authorization: Bearer $t"} "$@" "$SERVER_URL/v1/images/$n/access" || true
}
[ "$(acc "$READER" disk)" = 204 ] || fail "access: reader on disk"
[ ! -s "$T/body" ] || fail "access: a 204 with a body"
[ "$(acc "$READER" disk -I)" = 204 ] || fail "access: HEAD"
[ "$(acc "$(cat "$ADMIN_TOKEN_FILE")" nosuch)" = 204 ] || fail "access: admin on an image that does not exist"
[ "$(acc "$READER" other)" = 403 ] || fail "access: reader on other"
[ "$(acc "$READER" nosuch)" = 403 ] || fail "access: reader on an image that does not exist"
[ "$(acc "" disk)" = 401 ] || fail "access: no token"
[ "$(acc "$READER" .x)" = 400 ] || fail "access: a bad name"
[ "$(acc "$READER" disk -X DELETE)" = 405 ] || fail "access: DELETE"

# The proxy's own certificate: clients trust it, not the origin's.
server_init "$T/proxy"
PROXY_CERT="$T/proxy/cert.pem"
NGINX_PORT=$(free_port)
conf="$T/nginx-vmferry-cache.conf"
sub() { # sub FROM TO: in $conf, exactly as shipped
	grep -qF -- "$1" "$conf" || fail "contrib config lacks: $1"
	FROM=$1 TO=$2 python3 -c 'import os,sys; p=sys.argv[1]; s=open(p).read(); open(p,"w").write(s.replace(os.environ["FROM"], os.environ["TO"]))' "$conf"
}
cp "$TOP/contrib/nginx/vmferry-cache.conf" "$conf"
sub /var/cache/nginx/vmferry "$T/nginx/cache-data"
sub /run/nginx/vmferry-access "$T/nginx/cache-access"
sub "server 127.0.0.1:8443;" "server 127.0.0.1:$SERVER_PORT;"
sub "listen 443 ssl;" "listen 127.0.0.1:$NGINX_PORT ssl;"
sub /etc/nginx/vmferry/cache-cert.pem "$PROXY_CERT"
sub /etc/nginx/vmferry/cache-key.pem "$T/proxy/key.pem"
sub /etc/nginx/vmferry/origin-cert.pem "$CACERT"
sub "proxy_cache_valid 204 10s;" "proxy_cache_valid 204 ${ACCESS_SECS}s;"
nginx_conf "include $conf;"
run_nginx "$PROXY_CERT"
PROXY=$NGINX_URL

# Bytes the origin must send for one copy through 1 MiB slices: every
# slice holding a data block, whole (zero blocks inside it included),
# and the manifest once (it fits one slice).  The data bytes alone, for the report.
read -r ONE_COPY DATA_BYTES < <(python3 - "$T/data/img.raw" "$SLICE" "$N" <<'PY'
import sys
path, slice_ = sys.argv[1], int(sys.argv[2])
bs = 65536
data = open(path, "rb").read()
blocks = (len(data) + bs - 1) // bs
data_bytes, slices = 0, set()
for i in range(blocks):
    b = data[i * bs:(i + 1) * bs]
    if b.count(0) != len(b):
        data_bytes += len(b)
        slices.add(i * bs // slice_)
one = sum(min(slice_, len(data) - s * slice_) for s in slices)
print(one + 64 + 32 * blocks, data_bytes)
PY
)

# --- 16 clients at once ---------------------------------------------
sent0=$(server_stat bytes_sent)
man0=$(server_stat manifest_requests)
pids=()
for ((i = 0; i < N; i++)); do
	mkdir -p "$T/mnt$i"
	"$VMFERRY" mount -f "$PROXY/disk" "$T/mnt$i" --cache "$T/cache$i" \
		"${MOUNT_KEY[@]}" --cacert "$PROXY_CERT" \
		--token-file "$T/reader.token" --read-only \
		>"$T/logs/mount$i.log" 2>&1 &
	pids[i]=$!
	cleanup_fn "unmount_quiet $T/mnt$i; kill ${pids[i]} 2>/dev/null; wait ${pids[i]} 2>/dev/null"
done
for ((i = 0; i < N; i++)); do
	MOUNT_PID=${pids[i]}
	_wait_mounted "$T/mnt$i" 60
done
MOUNT_PID=
# Read every copy in parallel too, while hydration runs.
readers=()
for ((i = 0; i < N; i++)); do
	(dd if="$T/mnt$i/disk.img" bs=1M iflag=direct status=none |
		sha256sum | cut -d' ' -f1 >"$T/sum$i") &
	readers[i]=$!
done
for ((i = 0; i < N; i++)); do
	wait "${readers[i]}" || fail "reading client $i's copy"
	MOUNT_POINT=$T/mnt$i
	wait_hydrated 180
done
clients=0
for ((i = 0; i < N; i++)); do
	[ "$(cat "$T/sum$i")" = "$WANT" ] || fail "client $i read sha256 $(cat "$T/sum$i"), want $WANT"
	MOUNT_POINT=$T/mnt$i
	[ "$(mount_status verify_failures)" = 0 ] || fail "client $i had verify failures"
	w=$(mount_status bytes_wire)
	[ "$w" -ge "$DATA_BYTES" ] || fail "client $i received $w bytes, less than the image's $DATA_BYTES data bytes"
	clients=$((clients + w))
done
origin=$(($(server_stat bytes_sent) - sent0))
man=$(($(server_stat manifest_requests) - man0))
# One slice holds the manifest: the header's range and the whole
# manifest are cut from it; the lock makes the 16 clients wait for one.
[ "$man" -le 2 ] || fail "the origin answered $man manifest requests for $N clients: not cached?"
echo "RESULT clients=$N image_data_bytes=$DATA_BYTES one_copy_in_slices=$ONE_COPY" \
	"origin_sent=$origin clients_received=$clients" \
	"origin/one_copy=$(python3 -c "print(round($origin / $ONE_COPY, 3))")" \
	"clients/origin=$(python3 -c "print(round($clients / $origin, 2))")"
[ "$origin" -lt $((ONE_COPY * 3 / 2)) ] ||
	fail "the origin sent $origin bytes for $N clients, not about one copy ($ONE_COPY)"
[ "$clients" -ge $((DATA_BYTES * N)) ] || fail "the clients received $clients bytes, under $N copies"
for ((i = 0; i < N; i++)); do
	MOUNT_PID=${pids[i]}
	unmount "$T/mnt$i"
done

# --- who may read what is cached ------------------------------------
# A range the cache holds (the 16 clients read everything).
range="bytes=3000000-3100000"
python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.seek(3000000); sys.stdout.buffer.write(f.read(100001))' \
	"$T/data/img.raw" >"$T/want.range"
get() { # get TOKEN [curl args]: status; body in $T/body, headers in $T/hdr
	local t=$1
	shift
	curl -sS --cacert "$PROXY_CERT" -D "$T/hdr" -o "$T/body" -w '%{http_code}' \
		${t:+-H "Authorization: Bearer $t"} -H "Range: $range" "$@" \
		"$PROXY/v1/images/disk/versions/1/data" || true
}
c=$(get "$READER")
[ "$c" = 206 ] || fail "the reader got $c for a cached range"
cmp -s "$T/body" "$T/want.range" || fail "the reader got wrong bytes"
grep -qi '^vmferry-cache: HIT' "$T/hdr" || fail "the range was not served from the cache: $(cat "$T/hdr")"
data0=$(server_stat data_requests)
c=$(get "")
[ "$c" = 401 ] || fail "no token: $c, want 401"
grep -qi '^www-authenticate: Bearer realm="vmferry"' "$T/hdr" ||
	fail "a 401 through the proxy without the origin's WWW-Authenticate: $(cat "$T/hdr")"
c=$(get "vmf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
[ "$c" = 401 ] || fail "an unknown token: $c, want 401"
c=$(get "$OTHER")
[ "$c" = 403 ] || fail "a token without read on disk: $c, want 403"
! cmp -s "$T/body" "$T/want.range" || fail "a refused request got the data"
c=$(curl -sS --cacert "$PROXY_CERT" -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $OTHER" "$PROXY/v1/images/disk/versions/1/manifest")
[ "$c" = 403 ] || fail "a token without read on disk got the manifest: $c"
c=$(curl -sS --cacert "$PROXY_CERT" -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $OTHER" "$PROXY/v1/images/%64isk/versions/1/data")
[ "$c" = 403 ] || fail "a token without read on disk got data by an escaped name: $c"
c=$(curl -sS --cacert "$PROXY_CERT" -o /dev/null -w '%{http_code}' --path-as-is \
	-H "Authorization: Bearer $OTHER" "$PROXY/v1/images/other/../disk/versions/1/data")
[ "$c" = 403 ] || fail "a token without read on disk got data through ../: $c"
[ "$(server_stat data_requests)" = "$data0" ] || fail "refused requests reached the origin's data route"

# Uncached routes pass through with the origin's own answer.
c=$(curl -sS --cacert "$PROXY_CERT" -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $READER" "$PROXY/v1/images/disk")
[ "$c" = 200 ] || fail "metadata through the proxy: $c"
c=$(curl -sS --cacert "$PROXY_CERT" -o /dev/null -w '%{http_code}' -X POST \
	-H "Authorization: Bearer $READER" "$PROXY/v1/images/disk/lease" -d '{}')
[ "$c" = 403 ] || fail "a lease with a read token through the proxy: $c, want 403"
c=$(curl -sS --cacert "$PROXY_CERT" -o /dev/null -w '%{http_code}' \
	-H "Authorization: Bearer $READER" "$PROXY/v1/images/disk/versions/9/data")
[ "$c" = 404 ] || fail "a version that does not exist: $c, want 404"

# Compression asked for: the plain bytes, no Vmferry-Encoding.
c=$(get "$READER" -H "Vmferry-Accept-Encoding: zstd")
[ "$c" = 206 ] || fail "zstd asked: $c"
cmp -s "$T/body" "$T/want.range" || fail "zstd asked: not the plain bytes"
! grep -qi '^vmferry-encoding' "$T/hdr" || fail "a compressed answer through the cache"

# A revoked token: served while the access cache holds its answer (up
# to ACCESS_SECS), refused after.
c=$(get "$DOOMED")
[ "$c" = 206 ] || fail "the doomed token before revocation: $c"
"$VMFERRY_SERVER" token revoke "$SERVER_DIR" "$DOOMED_ID" >>"$T/logs/token.log" 2>&1 ||
	fail "token revoke $DOOMED_ID"
sleep $((ACCESS_SECS + 1))
c=$(get "$DOOMED")
[ "$c" = 401 ] || fail "a revoked token, after the access cache's validity: $c, want 401"

# --- a changed byte in the proxy's cache ----------------------------
# The slice holding the first data block at or after 8 MiB; change one
# byte of that block in nginx's cache file.
blk=$(python3 - "$T/data/img.raw" <<'PY'
import sys
f = open(sys.argv[1], "rb")
i = 128
while True:
    f.seek(i * 65536)
    b = f.read(65536)
    if b.count(0) != len(b):
        print(i); break
    i += 1
PY
)
s=$((blk * 65536 / SLICE))
key="disk/1/data bytes=$((s * SLICE))-$(((s + 1) * SLICE - 1))"
md5=$(printf '%s' "$key" | md5sum | cut -d' ' -f1)
file="$T/nginx/cache-data/${md5: -1}/${md5: -3:2}/$md5"
[ -f "$file" ] || fail "no cache file $file for \"$key\""
grep -qaF "KEY: $key" "$file" || fail "$file is not \"$key\""
python3 - "$file" "$SLICE" "$((blk * 65536 - s * SLICE + 100))" <<'PY'
import os, sys
path, slice_, off = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = os.path.getsize(path) - slice_  # the body is the file's end
with open(path, "r+b") as f:
    f.seek(body + off)
    b = f.read(1)
    f.seek(body + off)
    f.write(bytes([b[0] ^ 0xff]))
PY
# The proxy now serves the changed byte...
range="bytes=$((blk * 65536))-$((blk * 65536 + 65535))"
c=$(get "$READER")
[ "$c" = 206 ] || fail "the changed block: $c"
python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); sys.stdout.buffer.write(f.read(65536))' \
	"$T/data/img.raw" "$((blk * 65536))" >"$T/want.block"
! cmp -s "$T/body" "$T/want.block" || fail "the cache file was not changed"
# ...and a fresh mount refuses it: EIO, never those bytes.
mount_image "$PROXY/disk" "$T/mnt" --cache "$T/cache-x" --cacert "$PROXY_CERT" \
	--token-file "$T/reader.token" --read-only --no-hydrate --no-profile --io-timeout 3
if dd if="$T/mnt/disk.img" of="$T/got.block" bs=64K skip="$blk" count=1 \
	iflag=direct status=none 2>"$T/logs/dd.err"; then
	fail "a block changed in the proxy's cache was read without error"
fi
grep -q 'Input/output error' "$T/logs/dd.err" || fail "not EIO: $(cat "$T/logs/dd.err")"
[ "$(mount_status verify_failures)" -gt 0 ] || fail "no verify failure counted"
# Other blocks still read right.
dd if="$T/mnt/disk.img" of="$T/got.block" bs=64K skip=0 count=1 iflag=direct status=none ||
	fail "block 0 through the proxy"
cmp -s "$T/got.block" <(head -c 65536 "$T/data/img.raw") || fail "block 0 wrong"
unmount "$T/mnt"

# --- a changed byte in the proxy's cached manifest -------------------
key="disk/1/manifest bytes=0-$((SLICE - 1))"
md5=$(printf '%s' "$key" | md5sum | cut -d' ' -f1)
file="$T/nginx/cache-data/${md5: -1}/${md5: -3:2}/$md5"
[ -f "$file" ] || fail "no cache file $file for \"$key\""
grep -qaF "KEY: $key" "$file" || fail "$file is not \"$key\""
mlen=$((64 + 32 * ((size + 65535) / 65536)))
python3 - "$file" "$mlen" <<'PY'
import os, sys
path, mlen = sys.argv[1], int(sys.argv[2])
body = os.path.getsize(path) - mlen  # the body (the manifest) ends the file
with open(path, "r+b") as f:
    f.seek(body + 64 + 5 * 32)  # block 5's hash
    b = f.read(1)
    f.seek(body + 64 + 5 * 32)
    f.write(bytes([b[0] ^ 0x01]))
PY
mount_refused 1 "manifest of version 1: its SHA-256 is [0-9a-f]{16}\.\.\., not the manifest_sha256 [0-9a-f]{16}\.\.\. the server gives for it: refused" \
	"$PROXY/disk" --cacert "$PROXY_CERT" --token-file "$T/reader.token" --read-only
exit 0
