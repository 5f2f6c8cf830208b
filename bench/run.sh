#!/usr/bin/env bash
# run.sh: every benchmark (`make bench`); each prints its human lines and a key=value line; the
# key=value lines are repeated at the end as the summary. Only 127.0.0.1 is used.
set -uo pipefail
cd "$(dirname "$0")/.."
out=build/bench
mkdir -p "$out"
summary=()

run() {
    local name=$1
    shift
    echo "== $name: $*"
    if "$@" 2>&1 | tee "$out/$name.txt"; then :; else echo "$name: failed (exit ${PIPESTATUS[0]})"; fi
    local kv
    kv=$(grep -E '^[a-z0-9_]+=[-0-9.]+( [a-z0-9_]+=[-0-9.]+)*$' "$out/$name.txt" | tail -n 2)
    [ -n "$kv" ] && summary+=("$kv")
}

run decoder build/p1 bench
[ -x build/bench_store ] && run store build/bench_store
[ -x build/bench_query ] && run query build/bench_query
run http bench/bench_http.sh
run sse python3 bench/bench_sse.py --clients 1000 --seconds 10
run history python3 bench/bench_history.py
[ -f bench/bench_web.sh ] && run web bash bench/bench_web.sh
[ -f bench/bench_azure.sh ] && run azure bash bench/bench_azure.sh
[ -f bench/bench_pub.sh ] && run pub bash bench/bench_pub.sh
run daemon bench/bench_daemon.sh 30

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
