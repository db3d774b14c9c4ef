#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Build the libFuzzer targets against src/common and run each for SECONDS.
#
#   fuzz/run.sh [SECONDS]        (default 60)
#
# Environment: CLANG (default clang), FUZZ_OUT (build and work directory,
# default ${TMPDIR:-/tmp}/dinit-userservd-fuzz). The seeds in fuzz/seeds are
# read, never written: new corpus entries go to FUZZ_OUT/corpus/TARGET and
# crashing inputs to FUZZ_OUT/artifacts/. Exits non-zero if any target fails.
set -eu

seconds=${1:-60}
case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
common=$root/src/common
clang=${CLANG:-clang}
out=${FUZZ_OUT:-${TMPDIR:-/tmp}/dinit-userservd-fuzz}
mkdir -p "$out/artifacts"

cflags="-std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-fno-omit-frame-pointer -I$common"

# target: sources, extra fuzzer options
build() {
	name=$1; shift
	echo "== building $name"
	# shellcheck disable=SC2086
	"$clang" $cflags -o "$out/$name" "$here/$name.c" "$@"
}

build proto_decode_fuzz "$common/proto.c"
build config_fuzz "$common/config.c"
build envfile_fuzz "$common/envfile.c"

status=0
run() {
	name=$1 seeds=$2; shift 2
	mkdir -p "$out/corpus/$name"
	echo "== running $name for ${seconds}s"
	if ! "$out/$name" -max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$name-" "$@" \
		"$out/corpus/$name" "$here/seeds/$seeds"; then
		echo "!! $name failed; crashing input in $out/artifacts/" >&2
		status=1
	fi
}

run proto_decode_fuzz proto -max_len=4200
run config_fuzz config -max_len=9000 -dict="$here/config.dict"
run envfile_fuzz envfile -max_len=9000

exit $status
