#!/usr/bin/env bash
# bench_azure.sh: backlog drain of a day of 1-second readings (86,400) from p1d's store into
# Azurite with entity-group transactions; prints azure_drain_86400_s=N (partition = day, the
# default) and azure_drain_86400_hour_s=N (partition = hour), and, against bench/azure_stub.py (a
# Table endpoint that stores nothing), azure_drain_86400_stub_s=N: p1d's own side. Target: <= 60 s.
# Usage: bench/bench_azure.sh [day|hour|stub|all]   (default all; CAP_S bounds each run, default 180)
set -uo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
cap=${CAP_S:-180}
AZ=tests/azurite/node_modules/.bin/azurite-table
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
START=1738368000 # 2025-02-01T00:00:00Z
if [ ! -x build/p1d ] || [ ! -x build/p1 ]; then echo "SKIP: build/p1d missing (make)"; exit 0; fi
if [ ! -x "$AZ" ]; then echo "SKIP: Azurite missing (tools/setup.sh test)"; exit 0; fi
tmp=$(mktemp -d /tmp/p1d-bench-azure.XXXXXX)
azpid=""
p1dpid=""
cleanup() {
    [ -n "$p1dpid" ] && kill "$p1dpid" 2>/dev/null
    [ -n "$azpid" ] && kill "$azpid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

build/p1 sim --count 86400 --interval 1 --fast --start "@$START" >"$tmp/day.txt"
build/p1 import -q --db "$tmp/day.db" --meter home "$tmp/day.txt" || exit 1

# One run: a fresh in-memory Azurite, the imported day in a copy of the store, p1d draining it.
drain() {
    local partition=$1 port db
    port=$(free_port)
    if [ "${2:-}" = stub ]; then
        python3 bench/azure_stub.py "$port" &
    else
        "$AZ" --tableHost 127.0.0.1 --tablePort "$port" --inMemoryPersistence --disableTelemetry \
            --skipApiVersionCheck >"$tmp/azurite.log" 2>&1 &
    fi
    azpid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    db="$tmp/run-$partition.db"
    cp "$tmp/day.db" "$db"
    cat >"$tmp/p1d.conf" <<CONF
[azure]
endpoint = http://127.0.0.1:$port/devstoreaccount1
account = devstoreaccount1
key = $KEY
table = bench
partition = $partition
CONF
    local t0 t1 last=$((START + 86399)) cur=0
    t0=$(date +%s.%N)
    build/p1d --config "$tmp/p1d.conf" --db "$db" --listen 127.0.0.1:0 2>"$tmp/p1d-$partition.log" &
    p1dpid=$!
    while :; do
        cur=$(python3 - "$db" <<'PY'
import sqlite3, sys
try:
    c = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=5)
    r = c.execute("SELECT max(ts) FROM outbox_cursor WHERE publisher LIKE 'azure %'").fetchone()
    print(r[0] or 0)
except sqlite3.Error:
    print(0)
PY
)
        t1=$(date +%s.%N)
        [ "$cur" -ge "$last" ] && break
        if [ "$(echo "$t1 - $t0 > $cap" | bc)" = 1 ]; then break; fi
        sleep 0.2
    done
    kill "$p1dpid" 2>/dev/null; wait "$p1dpid" 2>/dev/null; p1dpid=""
    kill "$azpid" 2>/dev/null; wait "$azpid" 2>/dev/null; azpid=""
    local secs delivered=$((cur > 0 ? cur - START + 1 : 0))
    secs=$(printf '%.1f' "$(echo "$t1 - $t0" | bc)")
    if [ "$cur" -ge "$last" ]; then
        echo "$secs"
    else
        echo ">$cap (only $delivered of 86400 delivered)"
    fi
}

if [ "$which" = stub ] || [ "$which" = all ]; then
    echo "azure_drain_86400_stub_s=$(drain day stub)"
fi
if [ "$which" = day ] || [ "$which" = all ]; then
    echo "azure_drain_86400_s=$(drain day)"
fi
if [ "$which" = hour ] || [ "$which" = all ]; then
    echo "azure_drain_86400_hour_s=$(drain hour)"
fi
