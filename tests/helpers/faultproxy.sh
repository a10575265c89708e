# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shell side of tests/helpers/faultproxy.py (source after tests/lib.sh
# and start_server):
#   start_faultproxy [SEED]   a proxy in front of the test server, with
#                             its own certificate; sets PROXY_URL,
#                             PROXY_CACERT, SRV_CACERT
#   proxy_ctl REQUEST         a control request: "set?kind=drop&n=2",
#                             "clear", "stats" (printed)
#   proxy_mount URL MNT [options...]
#                             mount_image through the proxy (trusting
#                             its certificate)

start_faultproxy() {
	local ready="$T/proxy.ready"
	SRV_CACERT=$CACERT
	PROXY_CACERT="$T/proxy.pem"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 2 -subj /CN=127.0.0.1 \
		-addext "subjectAltName=IP:127.0.0.1" -keyout "$T/proxy.key" \
		-out "$PROXY_CACERT" >"$T/logs/openssl.log" 2>&1 ||
		fail "openssl: a certificate for the proxy"
	python3 "$TOP/tests/helpers/faultproxy.py" "$PROXY_CACERT" \
		"$T/proxy.key" "$SERVER_PORT" "$SRV_CACERT" "$ready" \
		"${1:-1}" >"$T/logs/proxy.log" 2>&1 &
	PROXY_PID=$!
	cleanup_fn "kill $PROXY_PID 2>/dev/null; wait $PROXY_PID 2>/dev/null"
	wait_for_file "$ready" || fail "fault proxy not ready"
	read -r PROXY_PORT PROXY_CTL_PORT <"$ready"
	# shellcheck disable=SC2034 # for the test that sources this
	PROXY_URL="https://127.0.0.1:$PROXY_PORT"
}

proxy_ctl() {
	local out
	out=$(curl -sSf "http://127.0.0.1:$PROXY_CTL_PORT/$1") ||
		fail "fault proxy control: $1"
	[ "$1" != stats ] || echo "$out"
}

proxy_mount() {
	CACERT=$PROXY_CACERT
	mount_image "$@"
	CACERT=$SRV_CACERT
}
