#!/bin/sh
# setup.sh: install what p1d needs to build, run and test; idempotent, quiet when all is there.
# Usage: tools/setup.sh [build|test]   (build: compiler and -dev packages; test: also the test servers)
set -eu
what=${1:-build}

# Debian packages. Build: libraries p1d links against. Test: the real peers the tests start.
BUILD_PKGS="build-essential pkg-config libssl-dev libsqlite3-dev libmicrohttpd-dev \
libcurl4-openssl-dev libmosquitto-dev libavahi-client-dev zlib1g-dev python3"
TEST_PKGS="$BUILD_PKGS clang libclang-rt-14-dev valgrind python3 curl mosquitto mosquitto-clients \
prometheus wrk nginx-light socat influxdb chromium sqlite3 python3-yaml faketime python3-cryptography \
avahi-daemon avahi-utils dbus-daemon"

# Cross compilers and qemu-user for tests/integration/test_cross_arch.sh (the unit tests on
# aarch64, armhf and big-endian mips); these package names exist on amd64 hosts.
CROSS_PKGS="qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf \
libc6-dev-armhf-cross gcc-mips-linux-gnu libc6-dev-mips-cross"
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
    TEST_PKGS="$TEST_PKGS $CROSS_PKGS"
fi

case "$what" in
build) pkgs=$BUILD_PKGS ;;
test) pkgs=$TEST_PKGS ;;
*) echo "setup.sh: unknown target '$what' (expected build or test)" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
# Node.js and npm (the dashboard's chart library, the browser tests, Azurite): used as found (a
# NodeSource install would conflict with Debian's packages), else Debian's.
if ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
    echo "setup.sh: installing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
    # Debian starts some packaged daemons on install; the tests run their own instances. Only
    # those installed just now are stopped: one the machine already had stays as it was.
    for pkg in mosquitto nginx-light prometheus influxdb avahi-daemon; do
        case " $missing " in *" $pkg "*) ;; *) continue ;; esac
        svc=${pkg%-light}
        $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
        $SUDO service "$svc" stop >/dev/null 2>&1 || true
    done
fi

# npm packages for the dashboard and the browser tests, pinned by web/package-lock.json.
if [ "$what" = test ] || [ -f web/package.json ]; then
    if [ -f web/package.json ] && [ ! -d web/node_modules ]; then
        echo "setup.sh: installing npm packages (pinned)"
        (cd web && npm ci --no-audit --no-fund --loglevel=error)
    fi
fi
# Azurite (the Azure Storage emulator) for the Azure Table tests, pinned by its package-lock.json.
if [ "$what" = test ] && [ -f tests/azurite/package.json ] && [ ! -d tests/azurite/node_modules ]; then
    echo "setup.sh: installing Azurite (pinned)"
    (cd tests/azurite && npm ci --no-audit --no-fund --loglevel=error)
fi
exit 0
