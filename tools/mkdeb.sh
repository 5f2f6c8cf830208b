#!/usr/bin/env bash
# mkdeb.sh: packs the built p1 and p1d into a Debian package for this machine's architecture,
# build/p1d_VERSION-1_ARCH.deb (run by `make deb` after `make`). On a Raspberry Pi it gives an
# arm64 or armhf package; `sudo apt install ./build/p1d_*.deb` installs it with its libraries.
#
# What the package holds: /usr/bin/p1 and p1d (stripped), their man pages, the systemd unit,
# /etc/p1d.conf (a conffile: an edited one survives upgrades), and the docs with the Grafana
# dashboard (grafana/p1d.json). Its Depends come from dpkg-shlibdeps; libcurl and libmosquitto,
# which p1d opens only when a publisher (or, libcurl, the price fetch) needs them, and
# libavahi-client, which it opens to be announced on the LAN, are Recommends; avahi-daemon, which
# does the announcing, is Suggests. The maintainer scripts enable and start p1d.service where
# systemd runs, restart it on upgrade, stop it on removal, and delete
# the history (/var/lib/p1d) only on purge. Installed into another root (dpkg --root, DPKG_ROOT
# set) they leave this machine's systemd alone.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
OUT=${1:-$BUILD}
for f in "$BUILD/p1" "$BUILD/p1d"; do
    [ -x "$f" ] || { echo "mkdeb: $f is not built: run make first" >&2; exit 1; }
done
for t in dpkg-deb dpkg-shlibdeps dpkg-architecture; do
    command -v "$t" >/dev/null || { echo "mkdeb: $t missing: apt-get install dpkg-dev" >&2; exit 1; }
done

version=$(sed -n 's/^#define P1_VERSION "\(.*\)"$/\1/p' include/p1/p1.h)
[ -n "$version" ] || { echo "mkdeb: no P1_VERSION in include/p1/p1.h" >&2; exit 1; }
arch=$(dpkg --print-architecture)
deb_version="$version-1"
# Who builds the package says so (DEB_MAINTAINER="Name <mail>"); Debian requires the field.
maintainer=${DEB_MAINTAINER:-p1d developers <p1d@localhost>}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root

make --no-print-directory install DESTDIR="$root" PREFIX=/usr SYSCONFDIR=/etc BUILD="$BUILD" >/dev/null
# The static library and headers are for building against libp1, not for running p1d.
rm -rf "$root/usr/lib/libp1.a" "$root/usr/include"
strip --strip-unneeded "$root/usr/bin/p1" "$root/usr/bin/p1d"
# Debian's man pages and changelogs are compressed.
gzip -9n "$root/usr/share/man/man1/p1.1" "$root/usr/share/man/man8/p1d.8"
doc=$root/usr/share/doc/p1d
install -m 644 README.md docs/*.md "$doc/"
install -m 644 docs/openapi.yaml "$doc/"
{
    echo "p1d ($deb_version) unstable; urgency=medium"
    echo
    echo "  * Package built from $(git rev-parse --short HEAD 2>/dev/null || echo 'a source tree')."
    echo
    echo " -- $maintainer  $(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n >"$doc/changelog.Debian.gz"
cat >"$doc/copyright" <<'EOF'
p1d: a reader for the P1 port of smart electricity meters.
Written by the p1d developers. The dashboard embeds uPlot (MIT licence, Leon Sorokin).
EOF

# Shared libraries the binaries link against, as package relations (dpkg-shlibdeps reads a
# debian/control of its own in the staging directory).
mkdir -p "$stage/debian"
printf 'Source: p1d\n\nPackage: p1d\nArchitecture: any\n' >"$stage/debian/control"
depends=$(cd "$stage" && dpkg-shlibdeps -O -e"root/usr/bin/p1d" -e"root/usr/bin/p1" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "mkdeb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk "$root" | cut -f1)

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: p1d
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends
Recommends: libcurl4, libmosquitto1, libavahi-client3
Suggests: avahi-daemon
Section: net
Priority: optional
Description: smart electricity meter (P1 port, DSMR) reader and dashboard
 p1d reads the P1 port of Dutch, Belgian, Luxembourg and other smart meters
 (DSMR 2.2 to 5.0, e-MUCS, encrypted Smarty) from a serial cable or a network
 dongle, and serves the readings as JSON, a live web dashboard, a local
 history (SQLite), Prometheus metrics, a HomeWizard-compatible API and a raw
 telegram relay; it publishes to MQTT (with Home Assistant discovery),
 InfluxDB and Azure Table Storage.
EOF
echo /etc/p1d.conf >"$root/DEBIAN/conffiles"

cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# p1d postinst: (re)start the service where systemd runs.
set -e
if [ "$1" = configure ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    if [ -z "$2" ]; then
        systemctl enable p1d.service || true
        systemctl start p1d.service || true
    else
        systemctl try-restart p1d.service || true
    fi
fi
exit 0
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
# p1d prerm: stop the service before its files go.
set -e
if [ "$1" = remove ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl stop p1d.service || true
    systemctl disable p1d.service || true
fi
exit 0
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# p1d postrm: the history database is the user's data: deleted on purge only.
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
    rm -rf "${DPKG_ROOT:-}/var/lib/p1d" "${DPKG_ROOT:-}/var/lib/private/p1d"
fi
exit 0
EOF
chmod 755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

mkdir -p "$OUT"
deb=$OUT/p1d_${deb_version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
