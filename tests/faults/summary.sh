#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Gather the RESULT lines of a test run's logs (default: the newest run)
# into a Markdown table: scenario, cycles, acknowledged writes checked,
# lost, wrong bytes returned, seconds.
set -euo pipefail
dir=${1:-${VMFERRY_BUILD:-build}/test-logs/latest}
echo "| scenario | cycles | acknowledged writes checked | lost | wrong bytes returned | seconds |"
echo "|---|---|---|---|---|---|"
grep -h '^RESULT ' "$dir"/*.log 2>/dev/null | while read -r _ kv; do
	declare -A f=()
	for p in $kv; do f[${p%%=*}]=${p#*=}; done
	echo "| ${f[scenario]} | ${f[cycles]} | ${f[acked]} | ${f[lost]} | ${f[wrong]} | ${f[secs]} |"
done
