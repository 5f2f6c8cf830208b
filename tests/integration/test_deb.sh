#!/usr/bin/env bash
# test_deb.sh: `make deb` (tools/mkdeb.sh) gives a package that dpkg installs, upgrades, removes
# and purges as a Debian user expects: installed into a root of its own (dpkg --root), so this
# machine's /usr, /etc and systemd are never touched.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/checks.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in dpkg-deb dpkg-shlibdeps; do
    if ! command -v "$t" >/dev/null; then
        echo "SKIP: $t missing (apt-get install dpkg-dev)"
        finish
    fi
done

version=$(sed -n 's/^#define P1_VERSION "\(.*\)"$/\1/p' include/p1/p1.h)
arch=$(dpkg --print-architecture)
deb=$(tools/mkdeb.sh "$tmp/out" 2>"$tmp/mkdeb.err")
check_expr "mkdeb names the package it wrote ($deb)" '[ "$deb" = "$tmp/out/p1d_${version}-1_${arch}.deb" ] && [ -s "$deb" ]'
[ -s "$deb" ] || { cat "$tmp/mkdeb.err"; finish; }

field() { dpkg-deb -f "$deb" "$1"; }
check_expr "control: package, version and architecture" \
    '[ "$(field Package)" = p1d ] && [ "$(field Version)" = "$version-1" ] && [ "$(field Architecture)" = "$arch" ]'
deps=$(field Depends)
check_expr "Depends has the libraries p1d links ($deps)" \
    '[[ $deps == *libmicrohttpd12* && $deps == *libsqlite3-0* && $deps == *libssl3* && $deps == *libc6* ]]'
check_expr "libcurl and libmosquitto, opened only for a publisher, are Recommends" \
    '[[ $(field Recommends) == *libcurl4* && $(field Recommends) == *libmosquitto1* && $deps != *curl* ]]'
check_expr "libavahi-client, opened only to announce, is Recommends; avahi-daemon Suggests" \
    '[[ $(field Recommends) == *libavahi-client3* && $(field Suggests) == avahi-daemon && $deps != *avahi* ]]'
dpkg-deb -e "$deb" "$tmp/control"
check_expr "/etc/p1d.conf is a conffile" 'grep -qx /etc/p1d.conf "$tmp/control/conffiles"'
for s in postinst prerm postrm; do
    check_expr "$s is valid sh" 'sh -n "$tmp/control/$s"'
done
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/files"
for f in /usr/bin/p1 /usr/bin/p1d /usr/lib/systemd/system/p1d.service /usr/share/man/man8/p1d.8.gz \
    /usr/share/man/man1/p1.1.gz /usr/share/doc/p1d/copyright /usr/share/doc/p1d/CONFIG.md \
    /usr/share/doc/p1d/grafana/p1d.json; do
    check_expr "the package holds $f" 'grep -qx "$f" "$tmp/files"'
done
check_expr "no static library or headers in the daemon's package" '! grep -q "libp1.a\|/include/" "$tmp/files"'

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: installing with dpkg --root needs root"
    finish
fi

# The host has every library the package depends on (make built p1d against them).
check_expr "dpkg finds the package's dependencies on this machine" \
    'dpkg --dry-run -i "$deb" >"$tmp/dry.out" 2>&1 && ! grep -q "dependency problems" "$tmp/dry.out"'

R=$tmp/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
: >"$R/var/lib/dpkg/status"
dpkgr() { dpkg --root="$R" --force-script-chrootless --force-depends "$@" >>"$tmp/dpkg.out" 2>&1; }
check_expr "dpkg installs it" 'dpkgr -i "$deb"'
check_expr "installed: the status says so" 'dpkg --root="$R" -s p1d 2>/dev/null | grep -q "Status: install ok installed"'
check_expr "the installed p1d runs: --version" '[ "$("$R/usr/bin/p1d" --version)" = "p1d $version" ]'
check_expr "the installed p1 runs: decodes a telegram" \
    '"$R/usr/bin/p1" decode tests/data/dsmr50-3phase-gas.txt | grep -q "\"ok\":true"'
check_expr "the installed /etc/p1d.conf passes --check-config" \
    '"$R/usr/bin/p1d" --config "$R/etc/p1d.conf" --check-config >/dev/null 2>&1'
check_expr "the unit starts /usr/bin/p1d on /etc/p1d.conf" \
    'grep -qx "ExecStart=/usr/bin/p1d --config /etc/p1d.conf" "$R/usr/lib/systemd/system/p1d.service"'

# An upgrade (the same package again) keeps the user's edits and the history.
printf '\n# edited by the user\n' >>"$R/etc/p1d.conf"
mkdir -p "$R/var/lib/p1d"
echo history >"$R/var/lib/p1d/p1d.db"
check_expr "dpkg upgrades it" 'dpkgr -i "$deb"'
check_expr "upgrade: the edited /etc/p1d.conf is kept" 'grep -q "edited by the user" "$R/etc/p1d.conf"'
check_expr "upgrade: the history is kept" '[ -s "$R/var/lib/p1d/p1d.db" ]'

check_expr "dpkg removes it" 'dpkgr -r p1d'
check_expr "removed: the programs are gone" '[ ! -e "$R/usr/bin/p1d" ] && [ ! -e "$R/usr/bin/p1" ]'
check_expr "removed: the configuration and the history stay" \
    '[ -f "$R/etc/p1d.conf" ] && [ -s "$R/var/lib/p1d/p1d.db" ]'
check_expr "dpkg purges it" 'dpkgr -P p1d'
check_expr "purged: the configuration and the history are gone" \
    '[ ! -e "$R/etc/p1d.conf" ] && [ ! -e "$R/var/lib/p1d" ]'
[ "$fail" -eq 0 ] || tail -n 30 "$tmp/dpkg.out"
finish
