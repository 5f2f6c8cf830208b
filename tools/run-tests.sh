#!/usr/bin/env bash
# run-tests.sh: build and run every suite (unit, unit under ASan+UBSan, decoder fixtures,
# conformance, fuzz smoke, integration, the history worker's under ThreadSanitizer); print each
# suite's counts and time and a total as the last line. The integration suites that mostly wait
# (on a broker, a browser, a timeout) run P1_TEST_JOBS at a time (default 3: on two cores they
# leave most of the CPU idle; at 4 the browser and Azurite suites start to miss their timeouts);
# the ones that keep every core busy (builds, qemu, valgrind, fuzzing) run alone. Each suite's
# output is in build/test-logs/.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
# p1d's calendar follows the system's zone (EET/EEST in an EET zone, docs/API.md "Times"); the
# suites expect CET/CEST, whatever zone the machine is set to (test_calendar_zone.py sets its own).
export TZ=Etc/UTC
. tools/slots.sh
J=$(nproc 2>/dev/null || echo 2)
JOBS=${P1_TEST_JOBS:-3}
total_pass=0
total_fail=0
failed_suites=()
log=build/test-logs
mkdir -p "$log"
started=$(date +%s)

# Runs a suite command into $log/NAME.out; its exit status and seconds go to NAME.rc, NAME.secs.
suite_run() {
    local name=$1 t0 rc
    shift
    rm -f "$log/$name.rc" "$log/$name.secs"
    t0=$(date +%s)
    "$@" >"$log/$name.out" 2>&1
    rc=$?
    echo $(($(date +%s) - t0)) >"$log/$name.secs"
    echo "$rc" >"$log/$name.rc"
}

# Reports a suite that ran: its output must contain a line "N passed, N failed".
suite_report() {
    local name=$1
    local rc line secs
    rc=$(cat "$log/$name.rc" 2>/dev/null || echo 127)
    secs=$(cat "$log/$name.secs" 2>/dev/null || echo "?")
    echo "== $name"
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log/$name.out" | tail -n 1)
    if [ -z "$line" ]; then
        tail -n 40 "$log/$name.out"
        echo "$name: no summary line (exit $rc, ${secs} s)"
        total_fail=$((total_fail + 1))
        failed_suites+=("$name")
        return
    fi
    local p f
    p=$(echo "$line" | sed -E 's/.*\b([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    if [ "$f" -ne 0 ]; then
        grep -E 'FAIL|failed|error|ERROR' "$log/$name.out" | head -n 40
        failed_suites+=("$name")
    fi
    grep -E '^(SKIP|skip)' "$log/$name.out" || true
    echo "$name: $p passed, $f failed (${secs} s)"
}

# Runs a suite alone and reports it.
suite() {
    suite_run "$@"
    suite_report "$1"
}

# Runs the suites named in pool_names (with their commands in pool_cmds, one string each)
# JOBS at a time, then reports them in the order given.
pool_names=()
pool_cmds=()
pool_add() {
    pool_names+=("$1")
    pool_cmds+=("$2")
}
pool_run() {
    local i
    for i in "${!pool_names[@]}"; do
        wait_slot "$JOBS"
        suite_run "${pool_names[$i]}" bash -c "${pool_cmds[$i]}" &
    done
    wait
    for i in "${!pool_names[@]}"; do
        suite_report "${pool_names[$i]}"
    done
    pool_names=()
    pool_cmds=()
}

# Builds; a build failure is a failed suite with its compiler output shown.
build() {
    local name=$1
    shift
    if ! "$@" >"$log/$name.out" 2>&1; then
        tail -n 60 "$log/$name.out"
        echo "$name: build failed"
        total_fail=$((total_fail + 1))
        failed_suites+=("$name")
        return 1
    fi
}

build build make -j"$J" all unit
build build-san make -j"$J" SAN=1 all unit
build build-tsan make -j"$J" TSAN=1 build/tsan/p1d
for t in build/tests/test_*; do
    [ -x "$t" ] && suite "unit-$(basename "$t")" "$t"
done
for t in build/san/tests/test_*; do
    [ -x "$t" ] && suite "san-$(basename "$t")" env ASAN_OPTIONS=detect_leaks=1 "$t"
done
# Integration: the suites that load every core alone, the others JOBS at a time, those of about
# a minute or more first, so that the pool ends on short ones.
alone=" test_cross_arch.sh test_valgrind.sh test_deb.sh "
long=(test_dashboard_qa.sh test_mqtt_discovery.py test_pub_azure.py test_dashboard.sh
    test_zeroconf.py test_price_now.py test_alerts.py test_price_fetch.py)
ordered=()
for n in "${long[@]}"; do ordered+=("tests/integration/$n"); done
for t in tests/integration/test_*.sh tests/integration/test_*.py; do
    case " ${long[*]} " in *" $(basename "$t") "*) ;; *) ordered+=("$t") ;; esac
done
for t in "${ordered[@]}"; do
    [ -f "$t" ] || continue
    n=$(basename "$t")
    case "$n" in *.py) run=python3 ;; *) run=bash ;; esac
    case "$alone" in
    *" $n "*) suite "$n" "$run" "$t" ;;
    *) pool_add "$n" "$run $t" ;;
    esac
done
# The same programs built with ASan+UBSan, on the suites that feed them hostile input; they
# too mostly wait, so they join the pool.
if [ -x build/san/p1d ] && [ -x build/san/p1 ]; then
    for t in test_decode_fixtures.py test_http_robust.py test_qa_regressions.py; do
        [ -f "tests/integration/$t" ] &&
            pool_add "san-$t" "P1='$PWD/build/san/p1' P1D='$PWD/build/san/p1d' python3 tests/integration/$t"
    done
fi
# p1d built with ThreadSanitizer on the suite of its history worker thread, with 4 hours of
# readings in place of a day (TSan makes the answers about ten times slower).
if [ -x build/tsan/p1d ]; then
    pool_add "tsan-test_history_worker.py" \
        "P1_TEST_HOURS=4 P1D='$PWD/build/tsan/p1d' python3 tests/integration/test_history_worker.py"
fi
pool_run
[ -x tools/fuzz.sh ] && suite fuzz-smoke tools/fuzz.sh smoke

if [ ${#failed_suites[@]} -ne 0 ]; then
    echo "failed suites: ${failed_suites[*]}"
fi
echo "all suites: $(($(date +%s) - started)) s"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
