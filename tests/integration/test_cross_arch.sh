#!/usr/bin/env bash
# test_cross_arch.sh: libp1 and the pure daemon modules on the CPUs p1d runs on next to a meter,
# not only on the x86-64 machine that builds it: the unit tests, built by Debian's cross compilers
# with the project's own flags (the Makefile, BUILD=build/cross/ARCH), run under qemu-user.
#   aarch64  Raspberry Pi 3/4/5 and ARM NAS boxes on a 64-bit OS: the CRC's table path
#   armhf    32-bit Raspberry Pi OS: 32-bit size_t and long, unsigned char
#   mips     big-endian 32-bit, as on many OpenWrt routers: the SWAR loads' byte order
# crypt.c (OpenSSL) and the modules that need SQLite are left out: their libraries are not
# installed for the other architectures, and they hold no code of ours that depends on the CPU.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tools/slots.sh

# The tests that need nothing but libc; each prints "N passed, N failed".
TESTS="test_crc test_parser test_value test_reading test_json test_civil test_loop test_sim"
LIB_PURE=""
for f in lib/*.c; do
    [ "$f" = lib/crypt.c ] || LIB_PURE="$LIB_PURE $f"
done
J=$(nproc 2>/dev/null || echo 2)
pass=0
fail=0
ran=0
work=$(mktemp -d "${TMPDIR:-/tmp}/p1-cross.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Builds each architecture (every core on one build), then runs all the tests under qemu-user,
# which is single-threaded, as many at a time as there are cores; reported in order.
runs=()
for arch in aarch64:aarch64-linux-gnu:qemu-aarch64 armhf:arm-linux-gnueabihf:qemu-arm \
    mips:mips-linux-gnu:qemu-mips; do
    IFS=: read -r name triple qemu <<<"$arch"
    if ! command -v "$triple-gcc" >/dev/null 2>&1 || ! command -v "$qemu" >/dev/null 2>&1; then
        echo "SKIP: $name: $triple-gcc or $qemu missing (tools/setup.sh test installs them on amd64)"
        continue
    fi
    build=build/cross/$name
    mkdir -p build/cross
    targets=""
    for t in $TESTS; do targets="$targets $build/tests/$t"; done
    # LIBS_CRYPTO and LIBS_SQLITE empty: nothing built here links them.
    if ! make -s -j"$J" CC="$triple-gcc" BUILD="$build" \
        LIB_SRC="$LIB_PURE" LIBS_CRYPTO= LIBS_SQLITE= $targets >"$build.log" 2>&1; then
        tail -n 40 "$build.log"
        echo "FAIL: $name: build failed (log: $build.log)"
        fail=$((fail + 1))
        continue
    fi
    for t in $TESTS; do runs+=("$name:$triple:$qemu:$t"); done
done

# Runs one test under qemu into $work/NAME-TEST.out, its exit status into .rc.
run_one() {
    local name triple qemu t
    IFS=: read -r name triple qemu t <<<"$1"
    timeout 300 "$qemu" -L "/usr/$triple" "build/cross/$name/tests/$t" >"$work/$name-$t.out" 2>&1
    echo $? >"$work/$name-$t.rc"
}
for r in "${runs[@]}"; do
    wait_slot "$J"
    run_one "$r" &
done
wait

for r in "${runs[@]}"; do
    IFS=: read -r name triple qemu t <<<"$r"
    out=$(cat "$work/$name-$t.out" 2>/dev/null)
    rc=$(cat "$work/$name-$t.rc" 2>/dev/null || echo 127)
    line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(printf '%s\n' "$line" | sed -nE 's/.*\b([0-9]+) passed.*/\1/p')
    f=$(printf '%s\n' "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
    if [ -z "$p" ] || [ -z "$f" ]; then
        printf '%s\n' "$out" | tail -n 20
        echo "FAIL: $name $t: no summary line (exit $rc)"
        fail=$((fail + 1))
        continue
    fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    [ "$f" -eq 0 ] || printf '%s\n' "$out" | grep -E 'FAIL' | head -n 20
    echo "$name $t: $p passed, $f failed"
    pass=$((pass + p))
    fail=$((fail + f))
    ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || [ "$fail" -gt 0 ] || echo "SKIP: no cross compiler found: nothing ran"
echo "cross_arch: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
