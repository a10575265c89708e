#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The server's web page, in headless Chromium driven by Selenium
# (tests/web/page.py): log in with a token (a wrong one is refused),
# see the images and their states (testvm idle, vm2 running locally
# under a mount's lease), the command to run one locally, "Run on
# server" then "Stop" on testvm (state remote, then idle, version 2),
# log out.  The page itself needs no token; the API behind it does.
source "$(dirname "$0")/../lib.sh"
requires chromium chromedriver openssl
# Debian's python3-selenium is for Debian's python3 (not another on the
# PATH).
py=/usr/bin/python3
"$py" -c 'import selenium' 2>/dev/null || { echo "SKIP: no python3-selenium" >&2; exit 77; }
run_testvm_setup --vm-grace 1
make_image "$T/data/img" $((2 * 1024 * 1024))
import_image vm2 "$T/data/img"
mount_image "$SERVER_URL/vm2" "$T/mnt" --no-hydrate

# The page holds no data: no token needed for it, nor given.
st=$(curl -sS --cacert "$CACERT" -o "$T/page.html" -w '%{http_code}' "$SERVER_URL/ui/")
[ "$st" = 200 ] && grep -q '<title>vmferry</title>' "$T/page.html" || fail "GET /ui/: $st"
st=$(curl -sS --cacert "$CACERT" -o /dev/null -w '%{http_code}' "$SERVER_URL/v1/images")
[ "$st" = 401 ] || fail "the API answered without a token: $st"

spki=$(openssl x509 -in "$CACERT" -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | base64)
"$py" "$TOP/tests/web/page.py" "$SERVER_URL" "$ADMIN_TOKEN_FILE" "$spki" \
	"$T/chromium" >"$T/logs/page.log" 2>&1 || fail "the page test failed"
cat "$T/logs/page.log"
[ "$(image_field testvm version)" = 2 ] || fail "the server is not at version 2"
[ "$(image_field testvm lease)" = None ] || fail "the server kept testvm's lease"
grep -q '"action":"vm.start"' "$SERVER_DIR/audit.log" || fail "no vm.start in the audit log"
grep -q '"action":"vm.stop"' "$SERVER_DIR/audit.log" || fail "no vm.stop in the audit log"
unmount "$T/mnt"
