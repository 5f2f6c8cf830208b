#!/usr/bin/env bash
# test_valgrind.sh: p1d under valgrind (memcheck) for a few seconds of simulated telegrams with a
# history store and HTTP traffic on every endpoint kind, then SIGTERM: no memory errors, no
# definite or indirect leaks, exit 0. Also `p1 import` and `p1 export` of the same readings.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
pass=0
fail=0
check() { if [ "$1" -eq 0 ]; then pass=$((pass + 1)); echo "ok   $2"; else fail=$((fail + 1)); echo "FAIL $2"; fi; }
# Waits up to 20 s for the pattern (grep) in the log; 0 when it came.
wait_log() {
    for _ in $(seq 100); do grep -q "$2" "$1" && return 0; sleep 0.2; done
    return 1
}
# SIGTERM to pid, then checks it exited 0 (valgrind's error exit is 99); shows the log's end when
# not.
stop_clean() {
    local rc
    kill -TERM "$1"
    wait "$1"
    rc=$?
    check $((rc != 0)) "$3 (exit $rc)"
    [ "$rc" -ne 0 ] && tail -20 "$2"
}
if ! command -v valgrind >/dev/null; then
    echo "SKIP: valgrind not installed"
    echo "0 passed, 0 failed"
    exit 0
fi
tmp=$(mktemp -d)
trap 'kill $pid ${apid:-} 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect)
# The price fetcher asks p1d itself: its /api/prices is no price list, so the fetch fails and
# retries (curl, the reply buffer, the parser's refusal and the backoff, all under memcheck).
# Gas is POSTed with a header and a body (Tibber's way): p1d takes the POST as an upload and
# refuses it with a JSON error, whose message the fetcher reads.
"${VG[@]}" build/p1d --source home=sim:7:speedup=30 --db "$tmp/p1d.db" --listen 127.0.0.1:$port \
    --prices-fetch-url "http://127.0.0.1:$port/api/prices?from={from_date}" \
    --prices-fetch-gas-url "http://127.0.0.1:$port/api/prices" \
    --prices-fetch-gas-header "X-Token: abc" --prices-fetch-gas-body '{"q":"{from_date}"}' \
    --log-level warn 2>"$tmp/p1d.log" &
pid=$!
up=1
for _ in $(seq 150); do curl -sf "http://127.0.0.1:$port/api/now" >/dev/null && { up=0; break; }; sleep 0.2; done
check $up "p1d under valgrind serves /api/now"
for path in /api/meters /api/v1/data /api/v1/telegram /api /p1.json /metrics /healthz / /app.js \
    "/api/history?step=raw" "/api/history?step=1m&format=csv" "/api/summary?period=day" \
    /api/prices /nope; do
    curl -s -o /dev/null "http://127.0.0.1:$port$path"
done
curl -s -m 2 -N "http://127.0.0.1:$port/api/stream" >/dev/null
curl -s -o /dev/null -X POST "http://127.0.0.1:$port/api/now"
printf 'GET /%s HTTP/1.1\r\nHost: x\r\n\r\n' "$(head -c 3000 /dev/zero | tr '\0' a)" |
    timeout 3 python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",'$port')); s.sendall(sys.stdin.buffer.read()); s.recv(100)' 2>/dev/null
sleep 2
grep -q "prices: fetching power prices from http://127.0.0.1:$port/api/prices failed: the reply is not a price list" "$tmp/p1d.log"
check $? "the price fetch under valgrind: tried, refused with its reason"
grep -q "prices: fetching gas prices from http://127.0.0.1:$port/api/prices failed: HTTP 400: no price list" "$tmp/p1d.log"
check $? "the POST price fetch under valgrind: the server's JSON error read"
# History answers on the worker thread: some clients leave while theirs is built, and SIGTERM
# comes while others are built or wait (answered 503).
for _ in $(seq 8); do
    curl -s -o /dev/null -m 0.3 "http://127.0.0.1:$port/api/history?step=raw&format=csv" &
done
sleep 1
cpids=()
for _ in $(seq 12); do
    curl -s -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:$port/api/summary?period=month" \
        >>"$tmp/codes" &
    cpids+=($!)
done
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
wait "${cpids[@]}"
! grep -qv '^\(200\|503\)$' "$tmp/codes" && [ "$(wc -l <"$tmp/codes")" -eq 12 ]
check $? "history answers under valgrind: built or, at SIGTERM, 503 ($(sort "$tmp/codes" | uniq -c | tr -s ' \n' ' '))"
check $((rc != 0)) "p1d under valgrind exits 0 after SIGTERM with no memory errors or leaks (exit $rc)"
[ "$rc" -ne 0 ] && tail -40 "$tmp/p1d.log"
# p1d --fetch-prices: one fetch (here refused: p1d's own port is closed now), then exit 1.
"${VG[@]}" build/p1d --db "$tmp/p1d.db" --prices-fetch-url "http://127.0.0.1:$port/x" \
    --fetch-prices 2>"$tmp/once.log"
rc=$?
check $((rc != 1)) "p1d --fetch-prices under valgrind: exit 1 for a failed fetch, no memory errors (exit $rc)"
[ "$rc" -ne 1 ] && tail -20 "$tmp/once.log"
# p1d --test-alert: one alert to the same closed port, not tried again, exit 1.
"${VG[@]}" build/p1d --alerts-url "http://127.0.0.1:$port/alerts" --test-alert 2>"$tmp/test-alert.log"
rc=$?
check $((rc != 1)) "p1d --test-alert under valgrind: exit 1 for an alert not delivered, no memory errors (exit $rc)"
[ "$rc" -ne 1 ] && tail -20 "$tmp/test-alert.log"
# ... and with [alerts] mqtt too: the passing MQTT client finds no broker there either.
"${VG[@]}" build/p1d --alerts-url "http://127.0.0.1:$port/alerts" --alerts-mqtt true \
    --mqtt-host 127.0.0.1 --mqtt-port "$port" --test-alert 2>"$tmp/test-alert-mqtt.log"
rc=$?
grep -q "the test alert was not published on MQTT" "$tmp/test-alert-mqtt.log"
check $((rc != 1 || $? != 0)) "p1d --test-alert on MQTT under valgrind: exit 1, MQTT says why, no memory errors (exit $rc)"
[ "$rc" -ne 1 ] && tail -20 "$tmp/test-alert-mqtt.log"
# [alerts]: a replayed meter that ends goes silent; the alert is POSTed to p1d's own HTTP server,
# which refuses it (404): the queue, the request and the refusal under memcheck.
build/p1 sim --count 2 --fast >"$tmp/two.txt" 2>/dev/null
aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${VG[@]}" build/p1d --source f=file:"$tmp/two.txt" --listen 127.0.0.1:$aport --http-stale 1s \
    --db "$tmp/alerts.db" --alerts-fuse 25 \
    --alerts-url "http://127.0.0.1:$aport/alerts" 2>"$tmp/alerts.log" &
apid=$!
wait_log "$tmp/alerts.log" "alerts: http://127.0.0.1:$aport/alerts refused 'p1d: meter f is silent' (HTTP 404: "
check $? "alerts under valgrind: the silent meter's alert sent and refused"
# a negative export price in an hour from now: the prices are read and that alert is refused too
python3 - "$aport" <<'PY'
import datetime, sys, urllib.request
t = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
t += datetime.timedelta(hours=1)
body = ("time,price,export\n%s,0.25,-0.03\n" % t.strftime("%Y-%m-%dT%H:%M:%SZ")).encode()
req = urllib.request.Request("http://127.0.0.1:%s/api/prices" % sys.argv[1], data=body,
                             method="PUT", headers={"Content-Type": "text/csv"})
urllib.request.urlopen(req, timeout=30).read()
PY
wait_log "$tmp/alerts.log" "refused 'p1d: negative power prices"
check $? "alerts under valgrind: a negative price ahead read from the store and alerted"
stop_clean $apid "$tmp/alerts.log" "p1d with [alerts] under valgrind exits 0 with no memory errors or leaks"
# Again on the same store, the silent meter's alert marked waiting as a stop would leave it: the
# start reads the alerts back (the recent list, the waiting one sent and refused again).
python3 -c 'import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE alerts SET url = ?, at_ms = ? WHERE title = ?",
          ("waiting", int(time.time() * 1000), "p1d: meter f is silent"))
c.commit()' "$tmp/alerts.db"
"${VG[@]}" build/p1d --source f=file:"$tmp/two.txt" --listen 127.0.0.1:$aport --http-stale 1h \
    --db "$tmp/alerts.db" --alerts-url "http://127.0.0.1:$aport/alerts" 2>"$tmp/alerts2.log" &
apid=$!
wait_log "$tmp/alerts2.log" "alerts: http://127.0.0.1:$aport/alerts refused 'p1d: meter f is silent' (HTTP 404: "
check $? "alerts under valgrind: the alert left waiting is read back from the store at the start, sent"
stop_clean $apid "$tmp/alerts2.log" "p1d reading its alerts back under valgrind exits 0, no memory errors or leaks"
build/p1 sim --count 300 --fast >"$tmp/cap.txt" 2>/dev/null
"${VG[@]}" build/p1 import --db "$tmp/imp.db" --meter m "$tmp/cap.txt" >/dev/null 2>"$tmp/imp.log"
rc=$?
check $rc "p1 import under valgrind (exit $rc)"
"${VG[@]}" build/p1 export --db "$tmp/imp.db" --meter m --from 2000-01-01 --to 2100-01-01 --step 1m \
    --format csv >/dev/null 2>"$tmp/exp.log"
rc=$?
check $rc "p1 export under valgrind (exit $rc)"
echo "test_valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
