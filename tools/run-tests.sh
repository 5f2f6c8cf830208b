#!/usr/bin/env bash
# run-tests.sh: build and run every suite (unit, unit under ASan+UBSan, decoder fixtures,
# conformance, fuzz smoke, integration); print each suite's counts and a total as the last line.
set -uo pipefail
cd "$(dirname "$0")/.."
J=$(nproc 2>/dev/null || echo 2)
total_pass=0
total_fail=0
failed_suites=()
log=build/test-logs
mkdir -p "$log"

# Runs a suite command; its output must contain a line "N passed, N failed".
suite() {
    local name=$1
    shift
    echo "== $name"
    "$@" >"$log/$name.out" 2>&1
    local rc=$?
    local line
    line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log/$name.out" | tail -n 1)
    if [ -z "$line" ]; then
        tail -n 40 "$log/$name.out"
        echo "$name: no summary line (exit $rc)"
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
    echo "$name: $p passed, $f failed"
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
for t in build/tests/test_*; do
    [ -x "$t" ] && suite "unit-$(basename "$t")" "$t"
done
for t in build/san/tests/test_*; do
    [ -x "$t" ] && suite "san-$(basename "$t")" env ASAN_OPTIONS=detect_leaks=1 "$t"
done
for t in tests/integration/test_*.sh tests/integration/test_*.py; do
    [ -f "$t" ] || continue
    case "$t" in
    *.py) suite "$(basename "$t")" python3 "$t" ;;
    *) suite "$(basename "$t")" bash "$t" ;;
    esac
done
# The same programs built with ASan+UBSan, on the suites that feed them hostile input.
if [ -x build/san/p1d ] && [ -x build/san/p1 ]; then
    for t in test_decode_fixtures.py test_http_robust.py test_qa_regressions.py; do
        [ -f "tests/integration/$t" ] &&
            suite "san-$t" env P1="$PWD/build/san/p1" P1D="$PWD/build/san/p1d" python3 "tests/integration/$t"
    done
fi
[ -x tools/fuzz.sh ] && suite fuzz-smoke tools/fuzz.sh smoke

if [ ${#failed_suites[@]} -ne 0 ]; then
    echo "failed suites: ${failed_suites[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
