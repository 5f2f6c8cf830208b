#!/usr/bin/env bash
# bench_pub.sh: 200 simulated meters (p1 sim --meters 200, 1 Hz each, over TCP) into one p1d with
# a store, publishing to Azurite (Azure Table Storage) and mosquitto at the same time; samples the
# publishers' total backlog (lag in readings, from /api/meters) every 10 s for ~120 s and prints
#   pub200_lag_start=N pub200_lag_end=N pub200_lag_max=N      (readings, azure + mqtt)
#   pub200_lag_grows=0|1 pub200_lag_seconds_max=N pub200_azure_lag_end=N pub200_mqtt_lag_end=N
#   pub200_api_meters_ms=N
# The Azure backlog is a saw tooth by design ([azure] flush, 60 s by default, holds a live meter's
# readings until a batch is worth sending), so growth compares the peaks of the first and the last
# 60 s. Target: no lag growth. Usage: bench/bench_pub.sh [SECONDS]  (env METERS=200, PARTITION=day|hour)
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
meters=${METERS:-200}
partition=${PARTITION:-day}
AZ=tests/azurite/node_modules/.bin/azurite-table
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
if [ ! -x build/p1d ] || [ ! -x build/p1 ]; then echo "SKIP: build/p1d or build/p1 missing (make)"; exit 0; fi
if [ ! -x "$AZ" ]; then echo "SKIP: Azurite missing (tools/setup.sh test)"; exit 0; fi
if [ ! -x "$MOSQUITTO" ]; then echo "SKIP: mosquitto missing (tools/setup.sh test)"; exit 0; fi
tmp=$(mktemp -d /tmp/p1d-bench-pub.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# A base port with `meters` free ports above it (the simulator listens on BASE..BASE+N-1).
base=$(python3 - "$meters" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    b = random.randrange(20000, 60000 - n)
    socks = []
    try:
        for p in range(b, b + n):
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(b)
    break
PY
)
[ -n "$base" ] || { echo "bench_pub: no $meters consecutive free ports"; exit 1; }

azport=$(free_port)
"$AZ" --tableHost 127.0.0.1 --tablePort "$azport" --inMemoryPersistence --disableTelemetry \
    --skipApiVersionCheck >"$tmp/azurite.log" 2>&1 &
pids+=($!)
mqport=$(free_port)
{
    echo "listener $mqport 127.0.0.1"
    echo "persistence false"
    echo "allow_anonymous true"
    # as root mosquitto drops to user "mosquitto", who cannot read our temp dir
    [ "$(id -u)" = 0 ] && echo "user root"
} >"$tmp/mosquitto.conf"
"$MOSQUITTO" -c "$tmp/mosquitto.conf" >"$tmp/mosquitto.log" 2>&1 &
pids+=($!)
wait_port "$azport" || { echo "bench_pub: Azurite did not start"; tail -5 "$tmp/azurite.log"; exit 1; }
wait_port "$mqport" || { echo "bench_pub: mosquitto did not start"; tail -5 "$tmp/mosquitto.log"; exit 1; }

build/p1 sim --meters "$meters" --out "tcp:127.0.0.1:$base" 2>"$tmp/sim.log" &
pids+=($!)
wait_port "$base" || { echo "bench_pub: p1 sim did not listen"; tail -5 "$tmp/sim.log"; exit 1; }

api=$(free_port)
{
    cat <<CONF
[azure]
endpoint = http://127.0.0.1:$azport/devstoreaccount1
account = devstoreaccount1
key = $KEY
table = bench
partition = $partition

[mqtt]
host = 127.0.0.1
port = $mqport
CONF
    for i in $(seq 0 $((meters - 1))); do
        printf '\n[source m%03d]\nspec = tcp:127.0.0.1:%d\n' "$i" $((base + i))
    done
} >"$tmp/p1d.conf"
build/p1d --config "$tmp/p1d.conf" --db "$tmp/p1d.db" --listen "127.0.0.1:$api" 2>"$tmp/p1d.log" &
pids+=($!)
p1dpid=$!
wait_port "$api" || { echo "bench_pub: p1d did not start"; tail -20 "$tmp/p1d.log"; exit 1; }
echo "bench_pub: $meters meters (ports $base..$((base + meters - 1))), Azurite :$azport (partition = $partition), mosquitto :$mqport, p1d :$api, ${secs} s"

python3 - "$api" "$secs" "$meters" <<'PY'
import json, sys, time, urllib.request

port, secs, nmeters = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])


def sample():
    t0 = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%d/api/meters" % port, timeout=30) as r:
        data = json.loads(r.read())
    ms = (time.monotonic() - t0) * 1000
    lag = {}
    receiving = 0
    states = {}
    age = 0
    for m in data:
        if m.get("state") == "receiving":
            receiving += 1
        for p in m.get("publishers") or []:
            lag[p["name"]] = lag.get(p["name"], 0) + (p.get("lag_readings") or 0)
            states[p["name"]] = p.get("state")
            age = max(age, p.get("lag_seconds") or 0)
    return lag, receiving, states, ms, age


t_start = time.monotonic()
rows = []
times = []
ages = []
while True:
    time.sleep(max(0.0, t_start + 10 * (len(rows) + 1) - time.monotonic()))
    try:
        lag, receiving, states, ms, age = sample()
    except Exception as e:  # p1d busy or gone: report and go on
        print("t=%3ds  /api/meters failed: %s" % (time.monotonic() - t_start, e), flush=True)
        if time.monotonic() - t_start >= secs:
            break
        continue
    total = sum(lag.values())
    rows.append((lag, total))
    times.append(ms)
    ages.append(age)
    print("t=%3ds  meters receiving %d/%d  lag total %6d  oldest %3ds  %s  states %s  (/api/meters %.0f ms)" % (
        time.monotonic() - t_start, receiving, nmeters, total, age,
        " ".join("%s=%d" % kv for kv in sorted(lag.items())),
        ",".join("%s:%s" % kv for kv in sorted(states.items())), ms), flush=True)
    if time.monotonic() - t_start >= secs:
        break
if not rows:
    print("bench_pub: no samples")
    sys.exit(1)
totals = [t for _, t in rows]
start, end, peak = totals[0], totals[-1], max(totals)
# Growth: [azure] flush (default 60 s) holds a live meter's readings until a batch is worth
# sending, so the Azure backlog is a saw tooth of period `flush` (up to flush x meters readings),
# not a trend. Compare the peaks of the first and the last 60 s (each spans a whole tooth): the
# backlog grows when the later peak is more than 2 s of every meter's readings above the earlier.
w = max(1, min(6, len(totals) // 2))
first, last = max(totals[:w]), max(totals[-w:])
grows = int(last > first + 2 * nmeters)
print("pub200_lag_start=%d pub200_lag_end=%d pub200_lag_max=%d" % (start, end, peak))
print("lag %s over %d s: peak of the first %d samples %d, of the last %d samples %d readings "
      "(azure + mqtt; oldest undelivered reading at most %d s old)" % (
          "GROWS" if grows else "does not grow", secs, w, first, w, last, max(ages)))
print("pub200_lag_grows=%d pub200_lag_seconds_max=%d pub200_azure_lag_end=%d pub200_mqtt_lag_end=%d "
      "pub200_api_meters_ms=%d" % (grows, max(ages), rows[-1][0].get("azure", 0),
                                   rows[-1][0].get("mqtt", 0), round(sorted(times)[len(times) // 2])))
PY
rc=$?
if ! kill -0 "$p1dpid" 2>/dev/null; then echo "bench_pub: p1d died"; tail -20 "$tmp/p1d.log"; rc=1; fi
echo "p1d log: $(grep -c 'warn\|error' "$tmp/p1d.log") warning/error lines"
grep 'warn\|error' "$tmp/p1d.log" | head -5
exit $rc
