#!/usr/bin/env bash
# bench_daemon.sh: p1d's footprint. (1) one simulated meter, 10 SSE clients, an hour of telegrams
# replayed at 60x: RSS at the end; then 60 s at the real 1 Hz pace: CPU share of one core.
# (2) 1,000 TCP meters from `p1 sim --meters 1000` at 1 Hz each: telegrams lost, CPU, RSS.
# Prints: meters1000_telegrams_per_s=N meters1000_rejected=N meters1000_receiving=N meters1000_cpu_pct=N
#         meters1000_rss_kb=N, then daemon_rss_kb=N daemon_cpu_pct=N
# Usage: bench/bench_daemon.sh [SECONDS_FOR_1000_METERS]   (everything on 127.0.0.1, bounded)
set -euo pipefail
cd "$(dirname "$0")/.."
B=build
WIN=${1:-30}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_http() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/api/meters" >/dev/null && return 0; sleep 0.1; done; return 1; }

# (1) one meter, an hour of telegrams at 60x with 10 SSE clients
port=$(free_port)
$B/p1d --source home=sim:1:speedup=60 --listen 127.0.0.1:$port --log-level warn 2>"$tmp/p1d.log" &
pid=$!; pids+=($pid)
wait_http $port
for i in $(seq 10); do curl -sN "http://127.0.0.1:$port/api/stream" >/dev/null & pids+=($!); done
sleep 60
rss_one=$(rss_kb $pid)
n=$(curl -s "http://127.0.0.1:$port/api/meters" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["telegrams"])')
echo "one meter at 60x for 60 s (an hour of telegrams: $n) with 10 SSE clients: RSS ${rss_one} kB"
kill $pid; wait $pid 2>/dev/null || true
port=$(free_port)
$B/p1d --source home=sim:1 --listen 127.0.0.1:$port --log-level warn 2>"$tmp/p1d2.log" &
pid=$!; pids+=($pid)
wait_http $port
for i in $(seq 10); do curl -sN "http://127.0.0.1:$port/api/stream" >/dev/null & pids+=($!); done
sleep 2
c0=$(cpu_ticks $pid); t0=$(date +%s.%N)
sleep 60
c1=$(cpu_ticks $pid); t1=$(date +%s.%N)
cpu=$(python3 -c "print('%.2f' % (100.0*($c1-$c0)/$HZ/($t1-$t0)))")
echo "one meter at 1 Hz with 10 SSE clients for 60 s: CPU ${cpu}% of one core"
kill $pid; wait $pid 2>/dev/null || true

# (2) 1,000 TCP meters at 1 Hz each
ulimit -n 8192 || true
base=$(python3 -c 'import random; print(random.randint(30000, 50000))')
$B/p1 sim --meters 1000 --out tcp:127.0.0.1:$base 2>"$tmp/sim.log" &
spid=$!; pids+=($spid)
sleep 2
hport=$(free_port)
{ echo "[http]"; echo "listen = 127.0.0.1:$hport"; echo "[log]"; echo "level = warn"
  for i in $(seq 0 999); do printf '[source m%04d]\nspec = tcp:127.0.0.1:%d\n' $i $((base + i)); done; } >"$tmp/p1d.conf"
$B/p1d --config "$tmp/p1d.conf" 2>"$tmp/p1d3.log" &
pid=$!; pids+=($pid)
wait_http $hport
sleep 5
tel() { curl -s "http://127.0.0.1:$hport/api/meters" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(x["telegrams"] for x in m), sum(x["rejected"] for x in m), sum(1 for x in m if x["state"]=="receiving"))'; }
read T0 R0 N0 <<<"$(tel)"; c0=$(cpu_ticks $pid); t0=$(date +%s.%N)
sleep "$WIN"
read T1 R1 N1 <<<"$(tel)"; c1=$(cpu_ticks $pid); t1=$(date +%s.%N)
rss=$(rss_kb $pid)
python3 - "$T0" "$T1" "$R0" "$R1" "$N1" "$c0" "$c1" "$t0" "$t1" "$HZ" "$rss" <<'PY'
import sys
T0, T1, R0, R1, N1, c0, c1 = map(int, sys.argv[1:8]); t0, t1 = float(sys.argv[8]), float(sys.argv[9])
hz, rss = int(sys.argv[10]), int(sys.argv[11])
dt = t1 - t0
expected = round(1000 * dt)
print("1000 TCP meters for %.1f s: %d telegrams accepted (expected ~%d), %d rejected, %d receiving; CPU %.1f%%; RSS %d kB"
      % (dt, T1 - T0, expected, R1 - R0, N1, 100.0 * (c1 - c0) / hz / dt, rss))
print("meters1000_telegrams_per_s=%.0f meters1000_rejected=%d meters1000_receiving=%d meters1000_cpu_pct=%.1f meters1000_rss_kb=%d"
      % ((T1 - T0) / dt, R1 - R0, N1, 100.0 * (c1 - c0) / hz / dt, rss))
PY
echo "daemon_rss_kb=$rss_one daemon_cpu_pct=$cpu"
