#!/bin/sh
# fuzz-one.sh GO PKG FUNC FUZZTIME: fuzzes one target (make fuzz).
#
# Go 1.26's fuzz coordinator can fail a run with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is busy (golang/go#75804,
# fixed in Go 1.27), without having found anything. Such a run, with no
# failing input written and no panic, is run once more; any other failure
# fails at once, with the log.
set -u
go=$1 pkg=$2 fn=$3 fuzztime=$4
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for attempt in 1 2; do
	if "$go" test -run=NONE -fuzz="^$fn\$" -fuzztime="$fuzztime" "./$pkg" >"$log" 2>&1; then
		tail -1 "$log"
		exit 0
	fi
	if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" &&
		! grep -q -e 'Failing input written' -e 'panic:' "$log"; then
		echo "fuzz $pkg $fn: Go's fuzztime deadline race (golang/go#75804), nothing found; running it again"
		continue
	fi
	cat "$log"
	exit 1
done
