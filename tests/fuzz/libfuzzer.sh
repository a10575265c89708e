#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run libFuzzer targets (built by `make fuzz` into build-fuzz/) for
# SECONDS each, one after the other, each on a scratch copy of its seed
# corpus in build-fuzz/corpus/NAME (the committed seeds stay as they
# are).  Prints one line per target: executions, executions per second,
# corpus growth.  On a crash, prints the end of the log and where the
# reproducer is, and exits 1 after the other targets ran.
#
#   tests/fuzz/libfuzzer.sh SECONDS NAME...
set -uo pipefail

TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"
secs=$1
shift
B=build-fuzz
fail=0
for t in "$@"; do
	corpus=$B/corpus/$t
	log=$B/fuzz-$t.log
	rm -rf "$corpus"
	mkdir -p "$corpus"
	cp tests/fuzz/corpus/"$t"/* "$corpus"/
	seeds=$(ls "$corpus" | wc -l)
	# -timeout: any single input taking seconds is a hang, a bug.
	if "$B/tests/fuzz/fuzz-$t" -max_total_time="$secs" -timeout=10 \
		-print_final_stats=1 -artifact_prefix="$B/crash-$t-" \
		"$corpus" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		printf 'fuzz-%-9s %11s runs %9s exec/s  corpus %s -> %s\n' \
			"$t" "$runs" "$rate" "$seeds" "$(ls "$corpus" | wc -l)"
	else
		tail -n 40 "$log"
		echo "fuzz-$t: FAILED (log $log); the input is in $B/crash-$t-*:" \
			"fix the bug, then add it to tests/fuzz/corpus/$t/" >&2
		fail=1
	fi
done
exit $fail
