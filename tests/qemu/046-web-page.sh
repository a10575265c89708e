#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The server's web page, in headless Chromium driven by Selenium
# (tests/web/page.py): log in with a token (a wrong one is refused),
# see the images and their states (testvm idle, vm2 running locally
# under a mount's lease), the command to run one locally, "Run on
# server" on a blank disk (QEMU's BIOS stays up until stopped): the
# VM's states as the page shows them (running -> stopping -> stopped,
# disk unchanged: still version 1), its display in the page (noVNC on a
# ticket: a canvas of the size a real RFB client reads, not all black),
# "Stop", log out.  The page itself needs no token; the API behind it
# does.  noVNC's files: served from /usr/share/novnc, path-safe.
source "$(dirname "$0")/../lib.sh"
requires chromium chromedriver openssl
# Debian's python3-selenium is for Debian's python3 (not another on the
# PATH).
py=/usr/bin/python3
"$py" -c 'import selenium' 2>/dev/null || { echo "SKIP: no python3-selenium" >&2; exit 77; }
run_testvm_setup --vm-grace 2
make_image "$T/data/img" $((2 * 1024 * 1024))
import_image vm2 "$T/data/img"
truncate -s 64M "$T/data/blank.img"
import_image blank "$T/data/blank.img"
printf '{"vm": {"memory": "128M", "cpus": 1}}\n' >"$SERVER_DIR/images/blank/policy.json"
# The display's size as a real RFB client reads it through `vmferry vnc`
# (page.py runs it while the page shows the display).
cat >"$T/rfb-size.sh" <<EOF
#!/usr/bin/env bash
VMFERRY_SERVER=$SERVER_URL "$VMFERRY" vnc blank --listen 127.0.0.1:0 --once --cacert "$CACERT" \\
	--token-file "$ADMIN_TOKEN_FILE" >"$T/logs/vnc.out" 2>"$T/logs/vnc.err" &
for i in \$(seq 100); do grep -q "display on" "$T/logs/vnc.out" && break; sleep 0.1; done
port=\$(sed -n 's/^blank: display on 127.0.0.1:\([0-9]*\)\$/\1/p' "$T/logs/vnc.out")
timeout 90 python3 "$TOP/tests/helpers/rfb-check.py" "127.0.0.1:\$port"
wait
EOF
chmod +x "$T/rfb-size.sh"
novnc=
[ -f /usr/share/novnc/core/rfb.js ] && novnc=1
mount_image "$SERVER_URL/vm2" "$T/mnt" --no-hydrate

# The page holds no data: no token needed for it, nor given.
st=$(curl -sS --cacert "$CACERT" -o "$T/page.html" -w '%{http_code}' "$SERVER_URL/ui/")
[ "$st" = 200 ] && grep -q '<title>vmferry</title>' "$T/page.html" || fail "GET /ui/: $st"
st=$(curl -sS --cacert "$CACERT" -o /dev/null -w '%{http_code}' "$SERVER_URL/v1/images")
[ "$st" = 401 ] || fail "the API answered without a token: $st"

spki=$(openssl x509 -in "$CACERT" -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | base64)
# noVNC's files: the module with its type, nothing outside the directory.
if [ -n "$novnc" ]; then
	get() {
		curl -sS --path-as-is --cacert "$CACERT" -o "$T/got" -w '%{http_code} %{content_type}' "$SERVER_URL$1"
	}
	out=$(get /ui/novnc/core/rfb.js)
	[ "$out" = "200 text/javascript; charset=utf-8" ] && cmp -s "$T/got" /usr/share/novnc/core/rfb.js ||
		fail "GET /ui/novnc/core/rfb.js: $out"
	out=$(get /ui/novnc/app/styles/base.css)
	[ "$out" = "200 text/css; charset=utf-8" ] || fail "GET base.css: $out"
	for bad in /ui/novnc/../../../etc/passwd /ui/novnc/core/../../../../etc/passwd \
		/ui/novnc/%2e%2e/%2e%2e/etc/passwd /ui/novnc//etc/passwd /ui/novnc/core /ui/novnc/ \
		/ui/novnc/core/nothere.js /ui/novnc/utils/novnc_proxy; do
		out=$(get "$bad")
		echo "GET $bad: $out"
		[ "${out%% *}" = 404 ] || fail "GET $bad: $out"
	done
	export RFB_SIZE_CMD="$T/rfb-size.sh"
else
	echo "no /usr/share/novnc: the display is not checked (make deps installs novnc)"
fi
"$py" "$TOP/tests/web/page.py" "$SERVER_URL" "$ADMIN_TOKEN_FILE" "$spki" \
	"$T/chromium" >"$T/logs/page.log" 2>&1 || fail "the page test failed"
cat "$T/logs/page.log"
[ "$(image_field blank version)" = 1 ] || fail "blank made a version"
[ "$(image_field blank lease)" = None ] || fail "the server kept blank's lease"
grep -q '"action":"vm.start"' "$SERVER_DIR/audit.log" || fail "no vm.start in the audit log"
grep -q '"action":"vm.stop"' "$SERVER_DIR/audit.log" || fail "no vm.stop in the audit log"
unmount "$T/mnt"
