#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redirects are resolved once, at mount: the descriptor's URL answers 301,
# the data file's 302 (to another location); the mount follows each hop
# once and sends every block request to the final URL (counted in
# nginx's access log), and the bytes read match.  A redirect loop and a
# redirect from https:// to http:// are refused with a clear error.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 curl nginx

size=$((6 * 1024 * 1024 + 999))
exported_image "$size" 62 "$T/www"

start_nginx "location ~ ^/a/(.*)\$ { return 301 /b/\$1; }
		location ~ ^/b/(.*/data)\$ { return 302 /c/\$1; }
		location /b/ { alias $T/www/; }
		location /c/ { alias $T/www/; }
		location ~ ^/loop/(.*)\$ { return 302 /loop/\$1; }
		location ~ ^/down/(.*)\$ { return 302 http://127.0.0.1:1/\$1; }"

mount_plain "$NGINX_URL/a/disk/vmferry.json" "$T/mnt" --cacert "$CACERT" --no-hydrate
got=$(dd if="$T/mnt/disk.img" bs=256K iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$WANT" ] || fail "sha256 through the redirected mount $got != $WANT"
[ "$(nginx_hits '/a/disk/vmferry.json')" = 1 ] || fail "descriptor redirect not hit exactly once"
[ "$(nginx_hits '/b/disk/1/data')" = 1 ] || fail "data redirect hit $(nginx_hits '/b/disk/1/data') times, want 1"
n=$(nginx_hits '/c/disk/1/data')
[ "$n" -gt 2 ] || fail "only $n requests reached the final data URL"
grep -q "redirects to https://127.0.0.1:$NGINX_PORT/c/disk/1/data: resolved once" \
	"$T/logs/mount.log" || fail "the redirect was not reported"
unmount "$T/mnt"

# A loop: refused after a bounded number of hops; nothing mounted.
mount_refused 1 "more than 5 redirects" "$NGINX_URL/loop/disk/vmferry.json" \
	--cacert "$CACERT"
[ "$(nginx_hits '/loop/disk/vmferry.json')" = 6 ] || fail "the loop was followed $(nginx_hits '/loop/disk/vmferry.json') times"

# https:// to http://: refused before anything is fetched from there.
mount_refused 1 "redirected from https:// to http://: refused" \
	"$NGINX_URL/down/disk/vmferry.json" --cacert "$CACERT"
exit 0
