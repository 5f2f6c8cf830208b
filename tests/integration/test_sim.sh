#!/usr/bin/env bash
# test_sim.sh: `p1 sim` end to end: stdout stream, decode, faults, pacing, TCP meters, pty, signals.
set -u
cd "$(dirname "$0")/../.." || exit 1
P1=${P1:-build/p1}
. tests/integration/checks.sh
tmp=$(mktemp -d)
pids=()

cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$P1" ]; then
    bad "$P1 is not built (run make)"
    finish
fi

# A reader for TCP and pty streams: counts telegrams whose CRC-16/ARC checks, prints
# "<valid> <invalid> <first equipment id>".
cat >"$tmp/reader.py" <<'EOF'
import os, re, select, socket, sys, time

def crc16(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc

def tally(buf):
    good = badc = 0
    ident = "-"
    for m in re.finditer(rb"/[^\r\n]*\r\n\r\n.*?!([0-9A-F]{4})\r\n", buf, re.S):
        tg = m.group(0)
        if crc16(tg[: tg.rindex(b"!") + 1]) == int(m.group(1), 16):
            good += 1
            if ident == "-":
                i = re.search(rb"0-0:96\.1\.1\(([0-9A-F]+)\)", tg)
                ident = bytes.fromhex(i.group(1).decode()).decode() if i else "?"
        else:
            badc += 1
    return good, badc, ident

def main():
    kind, target, seconds, want = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    if kind == "tcp":
        host, port = target.rsplit(":", 1)
        fd = socket.create_connection((host, int(port)), timeout=5)
        fd.setblocking(False)
        read = lambda: fd.recv(65536)
    else:
        fdn = os.open(target, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        fd = fdn
        read = lambda: os.read(fdn, 65536)
    buf = b""
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = read()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        if tally(buf)[0] >= want:
            break
    print(*tally(buf))

main()
EOF

# Waits (bounded) until file $1 contains a line matching $2.
wait_for() {
    local i
    for i in $(seq 1 50); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- usage -----------------------------------------------------------------------------------
"$P1" sim --help >"$tmp/help" 2>&1
check "--help exits 0" [ $? -eq 0 ]
check "--help prints usage" grep -q "usage: p1 sim" "$tmp/help"
for args in "--interval 0" "--bogus" "--meters 2" "--faults crc=2" "--start yesterday" \
    "--out tcp:127.0.0.1" "--phases 2" "--seed"; do
    # shellcheck disable=SC2086
    "$P1" sim $args --count 1 >/dev/null 2>"$tmp/err"
    rc=$?
    check "usage error '$args' exits 2 ($rc)" [ $rc -eq 2 ]
    check "usage error '$args' names the problem" grep -q "p1 sim: " "$tmp/err"
done

# ---- stdout ----------------------------------------------------------------------------------
args=(--seed 4 --start 2024-03-31T00:00:00 --interval 10 --count 2000)
"$P1" sim "${args[@]}" >"$tmp/a.txt"
check "stdout run exits 0" [ $? -eq 0 ]
check "2000 telegrams written" [ "$(grep -c '^!' "$tmp/a.txt")" -eq 2000 ]
"$P1" sim "${args[@]}" >"$tmp/b.txt"
check "same seed, same bytes" cmp -s "$tmp/a.txt" "$tmp/b.txt"
"$P1" sim --seed 5 --start 2024-03-31T00:00:00 --interval 10 --count 2000 >"$tmp/c.txt"
check "other seed, other bytes" not cmp -s "$tmp/a.txt" "$tmp/c.txt"
check "DST switch: 01:59:50 W then 03:00:00 S" \
    grep -q "0-0:1.0.0(240331015950W)" "$tmp/a.txt"
check "DST switch: 03:00:00 S follows" grep -q "0-0:1.0.0(240331030000S)" "$tmp/a.txt"
check "no 02:xx on the spring day" not grep -q "0-0:1.0.0(24033102" "$tmp/a.txt"
check "--start with zone" bash -c "'$P1' sim --count 1 --start 2024-06-01T12:00:00+02:00 \
    | grep -q '0-0:1.0.0(240601120000S)'"
check "--start @unix" bash -c "'$P1' sim --count 1 --start @1704067200 \
    | grep -q '0-0:1.0.0(240101010000W)'"
# literal OBIS names (grep -F): as a regex, 24.2.1 also matched a reading such as 2432.123
check "--phases 1 --no-gas" bash -c "'$P1' sim --count 1 --phases 1 --no-gas >'$tmp/p1.txt' \
    && grep -qF '1-0:32.7.0(' '$tmp/p1.txt' \
    && ! grep -qF -e '1-0:52.7.0(' -e ':24.2.1(' '$tmp/p1.txt'"
check "--phases 1 --no-gas: no L2 or gas line in 3000 seeds" bash -c "for s in \$(seq 1 3000); do \
    '$P1' sim --seed \$s --count 1 --phases 1 --no-gas; done >'$tmp/p1s.txt' \
    && [ \$(grep -cF '1-0:32.7.0(' '$tmp/p1s.txt') -eq 3000 ] \
    && ! grep -qF -e '1-0:52.7.0(' -e ':24.2.1(' '$tmp/p1s.txt'"
check "p1 sim | head: exit 0 when the reader leaves" \
    timeout 10 bash -c "'$P1' sim | head -c 100000 >/dev/null; exit \${PIPESTATUS[0]}"

if "$P1" decode </dev/null >/dev/null 2>&1; then
    "$P1" decode <"$tmp/a.txt" >"$tmp/a.json" 2>"$tmp/a.err"
    check "decode accepts every telegram (exit $?)" [ $? -eq 0 ]
    check "decode: 2000 ok" [ "$(grep -c '"ok":true' "$tmp/a.json")" -eq 2000 ]
    "$P1" sim --seed 6 --count 1000 --faults crc=10%,garbage=0.2 >"$tmp/f.txt"
    "$P1" decode <"$tmp/f.txt" >"$tmp/f.json" 2>/dev/null
    check "decode with faults exits 1" [ $? -eq 1 ]
    nok=$(grep -c '"ok":true' "$tmp/f.json")
    ncrc=$(grep -c '"error":"crc_mismatch"' "$tmp/f.json")
    check "faults: $nok ok + $ncrc crc_mismatch = 1000" [ $((nok + ncrc)) -eq 1000 ]
    check_expr "faults: crc rate near 10% ($ncrc)" '[ "$ncrc" -gt 50 ] && [ "$ncrc" -lt 160 ]'
    check "faults: garbage present" grep -q $'\xff' "$tmp/f.txt"
else
    echo "SKIP: p1 decode not available"
fi

# ---- realtime pacing -----------------------------------------------------------------------
t0=$(date +%s%N)
"$P1" sim --realtime --count 3 --interval 1 >"$tmp/rt.txt"
ms=$((($(date +%s%N) - t0) / 1000000))
check_expr "--realtime paces 3 telegrams over ~2 s (${ms} ms)" '[ "$ms" -ge 1800 ] && [ "$ms" -lt 5000 ]'

# ---- tcp, one meter on a free port -----------------------------------------------------------
# 12 telegrams, 1 s apart: readers that start late on a busy machine still see 2 in their 4 s
"$P1" sim --seed 3 --count 12 --out tcp:127.0.0.1:0 2>"$tmp/tcp.err" &
pid=$!
pids+=("$pid")
if wait_for "$tmp/tcp.err" "listening on tcp:127.0.0.1:"; then
    port=$(sed -n 's/.*listening on tcp:127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/tcp.err" | head -n1)
    python3 "$tmp/reader.py" tcp "127.0.0.1:$port" 4 2 >"$tmp/r1" &
    r1=$!
    python3 "$tmp/reader.py" tcp "127.0.0.1:$port" 4 2 >"$tmp/r2" &
    r2=$!
    wait "$r1" "$r2"
    read -r g1 b1 _ <"$tmp/r1"
    read -r g2 b2 _ <"$tmp/r2"
    check_expr "tcp client 1 got $g1 valid telegrams" '[ "${g1:-0}" -ge 2 ] && [ "${b1:-1}" -eq 0 ]'
    check_expr "tcp client 2 got $g2 valid telegrams" '[ "${g2:-0}" -ge 2 ] && [ "${b2:-1}" -eq 0 ]'
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    check "tcp --count 12 ends by itself" not kill -0 "$pid" 2>/dev/null
    wait "$pid"
    check "tcp run exits 0" [ $? -eq 0 ]
else
    bad "tcp listener did not start: $(cat "$tmp/tcp.err")"
fi

# ---- tcp, several meters on consecutive ports ------------------------------------------------
started=0
for attempt in 1 2 3 4 5; do
    base=$((20000 + (RANDOM * 7 + attempt * 991) % 40000))
    "$P1" sim --seed 10 --meters 3 --out "tcp:127.0.0.1:$base" 2>"$tmp/m.err" &
    pid=$!
    pids+=("$pid")
    if wait_for "$tmp/m.err" "listening on tcp:127.0.0.1:$((base + 2))"; then
        started=1
        break
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
done
if [ "$started" -eq 1 ]; then
    ids=()
    readers=()
    for i in 0 1 2; do
        python3 "$tmp/reader.py" tcp "127.0.0.1:$((base + i))" 4 1 >"$tmp/m$i" &
        readers+=($!)
    done
    wait "${readers[@]}"
    for i in 0 1 2; do
        read -r g b id <"$tmp/m$i"
        check "meter on port $((base + i)) sends valid telegrams ($g)" [ "${g:-0}" -ge 1 ]
        ids+=("$id")
    done
    check "three meters, three ids (${ids[*]})" \
        [ "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" -eq 3 ]
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    wait "$pid"
    check "SIGTERM: clean exit 0" [ $? -eq 0 ]
else
    bad "--meters 3 did not start: $(cat "$tmp/m.err")"
fi

# ---- pty ------------------------------------------------------------------------------------
"$P1" sim --seed 8 --count 8 --out pty 2>"$tmp/pty.err" &
pid=$!
pids+=("$pid")
if wait_for "$tmp/pty.err" "p1 sim: pty /dev/"; then
    path=$(sed -n 's/^p1 sim: pty \(.*\)$/\1/p' "$tmp/pty.err" | head -n1)
    python3 "$tmp/reader.py" pty "$path" 6 2 >"$tmp/p"
    read -r g b _ <"$tmp/p"
    check_expr "pty reader got $g valid telegrams" '[ "${g:-0}" -ge 2 ] && [ "${b:-1}" -eq 0 ]'
    kill -INT "$pid"
    wait "$pid"
    check "SIGINT on pty: clean exit 0" [ $? -eq 0 ]
else
    bad "pty not created: $(cat "$tmp/pty.err")"
fi

finish
