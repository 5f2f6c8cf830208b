#!/usr/bin/env bash
# fuzz.sh: build the libFuzzer targets fuzz/fuzz_*.c and run each over a copy of its seed corpus.
# Usage: tools/fuzz.sh smoke | SECONDS [target...]   (smoke: 20000 runs or 20 s per target)
# The targets run as many at a time as there are cores (FUZZ_JOBS to change).
# Prints "<target>: N passed, N failed" per target and a total; a crash exits 1 and names the input.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
. tools/slots.sh

mode=${1:-smoke}
[ $# -gt 0 ] && shift
case "$mode" in
smoke) limits=(-runs=20000 -max_total_time=20) ;;
'' | *[!0-9]*)
    echo "usage: tools/fuzz.sh smoke|SECONDS [target...]" >&2
    exit 2
    ;;
*) limits=(-max_total_time="$mode") ;;
esac

CC=${FUZZ_CC:-clang-14}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "SKIP: $CC not installed (tools/setup.sh test installs clang + libclang-rt-14-dev)"
    echo "0 passed, 0 failed"
    exit 0
fi

out=build/fuzz
mkdir -p "$out/artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/p1-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_*.c; do
        t=${f#fuzz/fuzz_}
        targets+=("${t%.c}")
    done
fi

# What each target links beside libp1: the daemon's and the CLI's sources it drives (into
# `extra`), and its libraries (into `libs`).
deps() {
    extra=()
    libs=(-lcrypto)
    case "$1" in
    json) extra=(src/json.c src/reading_json.c) ;;
    prices) extra=(src/cost.c src/civil.c src/store.c src/json.c) libs+=(-lsqlite3) ;;
    config)
        extra=(src/config.c src/suggest.c src/cost.c src/civil.c src/store.c src/json.c src/meter.c src/demand.c)
        libs+=(-lsqlite3)
        ;;
    azure)
        extra=(src/dl_curl.c src/curl_loop.c src/outbox.c src/store.c src/loop.c src/log.c
            src/civil.c src/json.c src/config.c src/suggest.c src/cost.c src/meter.c src/demand.c)
        libs+=(-lsqlite3 -ldl)
        ;;
    import) extra=(src/civil.c src/store.c src/json.c) libs+=(-lsqlite3 -lz) ;;
    http) # the whole server; the page's assets come from `make` (build/gen/web_assets.c)
        extra=(src/http.c src/http_reply.c src/http_sse.c src/history.c src/store.c src/cost.c src/civil.c src/json.c
            src/sim.c src/meter.c src/demand.c src/loop.c src/log.c src/homewizard.c src/metrics.c
            src/reading_json.c src/web.c src/price_now.c src/worker.c build/gen/web_assets.c)
        libs+=(-lmicrohttpd -lsqlite3 -lz -lpthread)
        ;;
    history)
        extra=(src/history.c src/http_reply.c src/store.c src/cost.c src/civil.c src/json.c src/sim.c
            src/meter.c src/demand.c src/price_now.c src/metrics.c src/log.c)
        libs+=(-lsqlite3)
        ;;
    esac
}

# Every source any target needs is compiled once, all of them in parallel; each target then
# only links. A source that does not compile fails the targets that need it.
obj=$out/obj
rm -rf "$obj"
mkdir -p "$obj"
# shellcheck disable=SC2054 # -fsanitize takes a comma list
CFLAGS_FUZZ=(-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined
    -fno-sanitize-recover=undefined -Iinclude -Isrc)
objname() { echo "$obj/$(echo "$1" | tr / _).o"; }
# Compiles one source into its object (with its compiler output beside it), none on failure.
compile() {
    local o
    o=$(objname "$1")
    # shellcheck disable=SC2086 # the flags are words
    $CC $CFLAGS_FUZZ_S -fsanitize=fuzzer-no-link -c "$1" -o "$o" >"$o.log" 2>&1 || rm -f "$o"
}
declare -A want=()
for t in "${targets[@]}"; do
    deps "$t"
    for s in "fuzz/fuzz_$t.c" lib/*.c "${extra[@]}"; do
        [ -f "$s" ] && want[$s]=1
    done
done
export CC obj
export CFLAGS_FUZZ_S="${CFLAGS_FUZZ[*]}"
export -f objname compile
printf '%s\n' "${!want[@]}" | xargs -P "$(nproc 2>/dev/null || echo 2)" -I{} bash -c 'compile "$1"' _ {}

# Links and runs one target; its report goes to $work/TARGET.report, its last line
# "fuzz_TARGET: 1 passed, 0 failed" or "... 0 passed, 1 failed" (none when skipped).
run_target() {
    local t=$1 src bin s o missing corpus log rc runs a
    local -a objs dict
    src=fuzz/fuzz_$t.c
    deps "$t"
    for s in "${extra[@]}"; do
        if [ ! -f "$s" ]; then
            echo "SKIP: fuzz_$t needs $s (make all builds build/gen/)"
            return
        fi
    done
    bin=$out/fuzz_$t
    objs=()
    for s in "$src" lib/*.c "${extra[@]}"; do
        objs+=("$(objname "$s")")
    done
    missing=0
    for o in "${objs[@]}"; do
        if [ ! -f "$o" ]; then
            head -n 40 "$o.log" 2>/dev/null
            missing=1
        fi
    done
    if [ "$missing" -ne 0 ] || ! "$CC" "${CFLAGS_FUZZ[@]}" -fsanitize=fuzzer "${objs[@]}" \
        "${libs[@]}" -o "$bin" >"$out/fuzz_$t.build.log" 2>&1; then
        head -n 40 "$out/fuzz_$t.build.log"
        echo "fuzz_$t: build FAILED"
        echo "fuzz_$t: 0 passed, 1 failed"
        return
    fi
    corpus=$work/$t
    mkdir -p "$corpus"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -r "fuzz/corpus/$t/." "$corpus/"
    fi
    # a target's own dictionary (fuzz/dict/TARGET.dict), else the telegram one
    dict=()
    if [ -f "fuzz/dict/$t.dict" ]; then
        dict=(-dict="fuzz/dict/$t.dict")
    elif [ -f fuzz/dict/p1.dict ]; then
        dict=(-dict=fuzz/dict/p1.dict)
    fi
    log=$out/fuzz_$t.log
    rm -f "$out/artifacts/$t-"*
    "$bin" "$corpus" "${dict[@]}" "${limits[@]}" -max_len=20480 -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" >"$log" 2>&1
    rc=$?
    runs=$(grep -aEo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' || echo "?")
    if [ "$rc" -eq 0 ]; then
        echo "fuzz_$t: $runs runs, no crash"
        echo "fuzz_$t: 1 passed, 0 failed"
    else
        grep -E 'ERROR|invariant|runtime error|SUMMARY' "$log" | head -n 10
        for a in "$out/artifacts/$t-"*; do
            [ -e "$a" ] && echo "fuzz_$t: crash input: $a"
        done
        echo "fuzz_$t: FAILED (exit $rc), log: $log"
        echo "fuzz_$t: 0 passed, 1 failed"
    fi
}

# Each target is single-threaded: as many run at once as there are cores (FUZZ_JOBS to
# change), the slowest first, so that the short ones fill in around them. The reports are
# printed in the order of the targets.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
order=()
for t in history http config json parser stream; do
    case " ${targets[*]} " in *" $t "*) order+=("$t") ;; esac
done
for t in "${targets[@]}"; do
    case " ${order[*]} " in *" $t "*) ;; *) order+=("$t") ;; esac
done
for t in "${order[@]}"; do
    wait_slot "$jobs"
    run_target "$t" >"$work/$t.report" 2>&1 &
done
wait
passed=0
failed=0
for t in "${targets[@]}"; do
    [ -f "$work/$t.report" ] && cat "$work/$t.report"
    last=$(tail -n 1 "$work/$t.report" 2>/dev/null)
    case "$last" in
    *": 1 passed, 0 failed") passed=$((passed + 1)) ;;
    *": 0 passed, 1 failed") failed=$((failed + 1)) ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
