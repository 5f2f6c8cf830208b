#!/usr/bin/env python3
"""test_zeroconf.py: [http] announce, p1d's mDNS/DNS-SD services, through a real avahi-daemon.

The suite runs in a network namespace of its own (unshare --net --mount), whose only interface
is its loopback: a private D-Bus system bus and avahi-daemon there answer on 127.0.0.1 and ::1
only, and nothing reaches or comes from the machine's network. avahi-browse resolves what p1d
announced over multicast DNS on that loopback, the way Home Assistant's zeroconf discovery sees
a HomeWizard P1 meter; the suite then follows Home Assistant's HomeWizard flow (the TXT keys it
requires, then GET /api at the address found)."""
import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (Checks, Daemon, P1D, fake_dongle, free_port, http, need_p1d,  # noqa: E402
                            stop_process, telegram, tmpdir, wait_for)

TOOLS = ("unshare", "mount", "dbus-daemon", "avahi-daemon", "avahi-browse")
HW = "_hwenergy._tcp"
WEB = "_http._tcp"
HA_KEYS = ("api_enabled", "path", "product_name", "product_type", "serial")

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

AVAHI_CONF = """[server]
host-name=p1test
use-ipv4=yes
use-ipv6=yes
allow-interfaces=lo
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-addresses=yes
publish-hinfo=no
publish-workstation=no
[reflector]
[rlimits]
"""


def loopback_up():
    """The new namespace's lo is down: up it (SIOCGIFFLAGS, SIOCSIFFLAGS with IFF_UP), which
    gives it 127.0.0.1 and ::1."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, req))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 0x1, b""))
    finally:
        s.close()


class Avahi:
    """A D-Bus system bus and an avahi-daemon of the suite's own, on the namespace's loopback."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.bus = os.path.join(tmp, "system_bus_socket")
        conf = os.path.join(tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONF % self.bus)
        with open(os.path.join(tmp, "avahi.conf"), "w") as f:
            f.write(AVAHI_CONF)
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + self.bus}
        self.dbus = subprocess.Popen(["dbus-daemon", "--nofork", "--config-file=" + conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for(lambda: os.path.exists(self.bus), 10, 0.05):
            raise RuntimeError("the private D-Bus did not start")
        self.proc = None
        self.starts = 0

    def log_path(self):
        return os.path.join(self.tmp, "avahi-%d.log" % self.starts)

    def start(self):
        self.starts += 1
        env = dict(os.environ, **self.env)
        self.log = open(self.log_path(), "wb")
        self.proc = subprocess.Popen(
            ["avahi-daemon", "-f", os.path.join(self.tmp, "avahi.conf"), "--no-drop-root",
             "--no-chroot", "--no-rlimits", "--no-proc-title"],
            stdout=self.log, stderr=self.log, env=env)

        def up():
            with open(self.log_path(), "rb") as f:
                return b"Server startup complete" in f.read()
        if not wait_for(up, 15, 0.05):
            raise RuntimeError("avahi-daemon did not start: %s" % open(self.log_path()).read())

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.log.close()
            self.proc = None

    def close(self):
        self.stop()
        stop_process(self.dbus)

    def browse(self, kind):
        """avahi-browse's resolved services of type kind: [{name, host, address, port, txt}]."""
        r = subprocess.run(["avahi-browse", "--resolve", "--parsable", "--terminate",
                            "--no-db-lookup", kind], capture_output=True, text=True, timeout=20,
                           env=dict(os.environ, **self.env))
        found = []
        for line in r.stdout.splitlines():
            f = line.split(";", 9)
            if f[0] != "=" or len(f) < 10:
                continue
            name = re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1))), f[3])
            txt = {}
            for item in re.findall(r'"((?:[^"\\]|\\.)*)"', f[9]):
                k, _, v = item.partition("=")
                txt[k] = v
            found.append({"name": name, "proto": f[2], "host": f[6], "address": f[7],
                          "port": int(f[8]), "txt": txt})
        return found

    def named(self, kind, name):
        return [s for s in self.browse(kind) if s["name"] == name]


def start_p1d(tmp, av, args, env=None):
    e = dict(av.env)
    e.update(env or {})
    return Daemon(args, tmp, env=e)


def api_serial(port):
    import json
    code, _, body = http(port, "/api")
    return json.loads(body)["serial"] if code == 200 else None


def test_homewizard_discovery(c, tmp, av):
    """Port 80, no credentials (auto): Home Assistant's HomeWizard discovery finds p1d, its TXT
    keys pass the integration's checks, GET /api at the address found answers with the same
    serial; the serial follows the meter's equipment id; the services go when p1d stops."""
    dongle = fake_dongle()
    d = start_p1d(tmp, av, ["--source", "home=tcp:127.0.0.1:%d" % dongle.getsockname()[1],
                            "--listen", "0.0.0.0:80"])
    try:
        c.check("announced in the log", d.wait_log(r"mdns: announced 'p1d on p1test' on port 80: "
                                                   r"HomeWizard P1 API \(_hwenergy\._tcp, serial "
                                                   r"[0-9a-f]{12}\) dashboard \(_http\._tcp\)")
                is not None, d.text()[-2000:])
        hw = wait_for(lambda: av.named(HW, "p1d on p1test"), 10)
        c.check("announced over IPv4 only (0.0.0.0 takes no IPv6 connection)",
                hw and {s["proto"] for s in hw} == {"IPv4"}, repr(hw))
        s = hw[0] if hw else {"txt": {}, "port": 0, "address": "", "host": ""}
        c.check("its TXT has every key Home Assistant requires",
                all(k in s["txt"] for k in HA_KEYS), repr(s["txt"]))
        c.check("path is /api/v1 (else Home Assistant aborts: unsupported_api_version)",
                s["txt"].get("path") == "/api/v1", repr(s["txt"]))
        c.check("api_enabled=1, product_type HWE-P1, product_name P1 meter",
                (s["txt"].get("api_enabled"), s["txt"].get("product_type"),
                 s["txt"].get("product_name")) == ("1", "HWE-P1", "P1 meter"), repr(s["txt"]))
        c.check("port 80 on p1test.local", (s["port"], s["host"]) == (80, "p1test.local"),
                repr(s))
        # What Home Assistant does next: GET /api at the discovered address, port 80.
        addr = s["address"] if ":" not in s["address"] else "127.0.0.1"
        c.check("discovered at a loopback address", addr.startswith("127.") or
                s["address"] == "::1", repr(s))
        before = api_serial(80)
        c.check("GET /api at the address found: same serial as the TXT record",
                before is not None and s["txt"].get("serial") == before,
                "%r vs %r" % (s["txt"].get("serial"), before))
        web = wait_for(lambda: av.named(WEB, "p1d on p1test"), 10)
        c.check("the dashboard as _http._tcp, port 80, path /",
                web and web[0]["port"] == 80 and web[0]["txt"].get("path") == "/", repr(web))
        code, _, body = http(80, "/")
        c.check("... which serves the page", code == 200 and b"<html" in body.lower()[:4096],
                str(code))

        # The first telegram brings the equipment id: the serial of GET /api changes to it, and
        # the announced one follows.
        conn, _ = dongle.accept()
        conn.sendall(telegram(1))
        after = wait_for(lambda: (lambda v: v if v and v != before else None)(api_serial(80)),
                         10, 0.1)
        c.check("GET /api's serial follows the equipment id", after and after != before,
                repr((before, after)))
        txt_serial = wait_for(lambda: [x["txt"].get("serial") for x in av.named(HW, "p1d on p1test")
                                       if x["txt"].get("serial") == after], 10)
        c.check("the announced serial follows it", bool(txt_serial), repr(av.named(HW, "p1d on p1test")))
        c.check("logged", d.wait_log(r"mdns: HomeWizard serial now %s" % after, 5) is not None,
                d.text()[-1500:])
        conn.close()
    finally:
        c.check("p1d stops cleanly", d.stop() == 0, d.text()[-1500:])
        dongle.close()
    c.check("the services are withdrawn when p1d stops",
            wait_for(lambda: not av.named(HW, "p1d on p1test") and
                     not av.named(WEB, "p1d on p1test"), 10), repr(av.browse(HW)))


def test_auto_rules(c, tmp, av):
    """auto announces what a LAN client can use; yes announces both and warns; no, nothing."""
    port = free_port()
    cases = [
        # (name, args, expect hw, expect web, log needle)
        ("loopback", ["--listen", "127.0.0.1:%d" % port, "--log-level", "debug"], 0, 0,
         r"mdns: \[http\] listen 127\.0\.0\.1:%d is a loopback address" % port),
        ("loopback6", ["--listen", "[::1]:%d" % port, "--log-level", "debug"], 0, 0,
         r"mdns: \[http\] listen \[::1\]:%d is a loopback address" % port),
        ("not80", ["--listen", "0.0.0.0:%d" % port], 0, 1,
         r"mdns: the HomeWizard API is not announced: HomeWizard clients such as Home "
         r"Assistant's integration talk to port 80 only, and p1d listens on %d" % port),
        ("token", ["--listen", "0.0.0.0:80", "--token", "s3cret"], 0, 1,
         r"mdns: the HomeWizard API is not announced: HomeWizard clients send no token"),
        ("basic", ["--listen", "[::]:80", "--http-basic-user", "me", "--http-basic-pass", "pw"],
         0, 1, r"mdns: the HomeWizard API is not announced: HomeWizard clients send no token"),
        ("forced", ["--listen", "127.0.0.1:%d" % port, "--http-announce", "yes"], 1, 1,
         r"warn: mdns: announcing as asked \(\[http\] announce = yes\), but \[http\] listen "
         r"127\.0\.0\.1:%d is a loopback address" % port),
        ("off", ["--listen", "0.0.0.0:80", "--http-announce", "no", "--log-level", "debug"], 0, 0,
         None),
    ]
    for name, args, want_hw, want_web, needle in cases:
        d = start_p1d(tmp, av, ["--source", "home=sim", "--http-announce-name", "case " + name]
                      + args)
        try:
            ok = d.http_port() is not None
            if needle:
                ok = ok and d.wait_log(needle, 5) is not None
            if want_hw or want_web:
                ok = ok and d.wait_log(r"mdns: announced 'case %s'" % name, 10) is not None
            else:
                # A daemon that announces is up within a second; give this one three and make
                # sure a control daemon's announcement is seen in the same browse.
                ctl = start_p1d(tmp, av, ["--source", "c=sim", "--listen", "127.0.0.1:0",
                                          "--http-announce", "yes",
                                          "--http-announce-name", "control " + name])
                try:
                    ok = ok and ctl.wait_log(r"mdns: announced 'control", 10) is not None
                    time.sleep(1)
                    names = {s["name"] for s in av.browse(WEB)}
                    ok = ok and ("control " + name) in names
                finally:
                    ctl.stop()
            hw = bool(wait_for(lambda: av.named(HW, "case " + name), 5 if want_hw else 0))
            web = bool(wait_for(lambda: av.named(WEB, "case " + name), 5 if want_web else 0))
            if name == "off":
                ok = ok and "mdns" not in d.text()
            c.check("announce %s: HomeWizard %s, dashboard %s" % (
                name, "yes" if want_hw else "no", "yes" if want_web else "no"),
                ok and hw == bool(want_hw) and web == bool(want_web),
                "hw=%s web=%s %s" % (hw, web, d.text()[-1500:]))
        finally:
            d.stop()
            wait_for(lambda: not av.named(WEB, "case " + name), 5)


def test_scope(c, tmp, av):
    """Announced where the server takes connections: a specific address in its family only,
    [::] in both. (mDNS over IPv6 reaches no browser on a bare loopback, which has no link-local
    address: the IPv6 side shows as the absence of the IPv4 one.)"""
    ds = {}
    try:
        for name, listen in (("v4", "127.0.0.1:0"), ("v6", "[::1]:0"), ("both", "[::]:0")):
            ds[name] = start_p1d(tmp, av, ["--source", "m=sim", "--listen", listen,
                                           "--http-announce", "yes",
                                           "--http-announce-name", "scope " + name])
        for name, v4 in (("v4", True), ("v6", False), ("both", True)):
            d = ds[name]
            ok = d.wait_log(r"mdns: announced 'scope %s'" % name, 10) is not None
            got = wait_for(lambda: av.named(WEB, "scope " + name), 10 if v4 else 3)
            listen = d.text().split("dashboard and API at ")[-1].split("\n")[0].strip()
            c.check("listen %s: %s over IPv4" % (listen, "announced" if v4 else "not announced"),
                    ok and bool(got) == v4 and all(
                        s["port"] == d.http_port() and s["address"] == "127.0.0.1" for s in got),
                    repr(got) + d.text()[-600:])
    finally:
        for d in ds.values():
            d.stop()


def test_name_taken(c, tmp, av):
    """Two p1d asking for the same name: the second one takes Avahi's next name, '#2'."""
    a = start_p1d(tmp, av, ["--source", "a=sim", "--listen", "127.0.0.1:0", "--http-announce",
                            "yes", "--http-announce-name", "Meterkast"])
    b = None

    def logs():
        return "\n--- first:\n%s\n--- second:\n%s" % (a.text()[-1200:], b.text()[-1200:] if b else "")
    try:
        c.check("the first one is announced as asked",
                a.wait_log(r"mdns: announced 'Meterkast' on", 20) is not None, logs())
        b = start_p1d(tmp, av, ["--source", "b=sim", "--listen", "127.0.0.1:0",
                                "--http-announce", "yes", "--http-announce-name", "Meterkast"])
        c.check("the second one says the name is taken",
                b.wait_log(r"warn: mdns: the name 'Meterkast' is taken on the network; "
                           r"announcing as 'Meterkast #2'", 20) is not None, logs())
        c.check("... and is announced under the new one",
                b.wait_log(r"mdns: announced 'Meterkast #2' on port %d" % b.http_port(), 20)
                is not None, logs())
        want = sorted([("Meterkast", a.http_port()), ("Meterkast #2", b.http_port())])
        seen = []

        def both():
            seen[:] = sorted({(s["name"], s["port"]) for s in av.browse(HW)
                              if s["name"].startswith("Meterkast")})
            return seen == want
        c.check("both found, each with its own port", wait_for(both, 15),
                "%r, want %r%s" % (seen, want, logs()))
    finally:
        a.stop()
        if b:
            b.stop()


def test_avahi_comes_and_goes(c, tmp, av):
    """p1d started before avahi-daemon announces when it comes; when it restarts, again."""
    av.stop()
    d = start_p1d(tmp, av, ["--source", "home=sim", "--listen", "127.0.0.1:0",
                            "--http-announce", "yes", "--http-announce-name", "late"])
    try:
        c.check("p1d waits for avahi-daemon",
                d.wait_log(r"mdns: waiting for avahi-daemon", 10) is not None, d.text()[-800:])
        c.check("... and serves meanwhile", http(d.http_port(), "/api")[0] == 200)
        av.start()
        c.check("announced once avahi-daemon runs",
                d.wait_log(r"mdns: announced 'late'", 15) is not None, d.text()[-800:])
        c.check("... and found", bool(wait_for(lambda: av.named(HW, "late"), 10)))
        av.stop()
        c.check("p1d notices avahi-daemon going",
                d.wait_log(r"warn: mdns: avahi-daemon went away; announcing again when it is back",
                           10) is not None, d.text()[-800:])
        c.check("... keeps serving", http(d.http_port(), "/api")[0] == 200)
        av.start()
        c.check("announced again after the restart",
                d.wait_log(r"mdns: announced 'late'", 20, count=2) is not None, d.text()[-800:])
        c.check("... and found again", bool(wait_for(lambda: av.named(HW, "late"), 10)))
    finally:
        c.check("p1d stops cleanly", d.stop() == 0, d.text()[-800:])
        if not av.proc:
            av.start()


def test_without_avahi(c, tmp, av):
    """No usable libavahi-client, or no D-Bus at all: one line says so, p1d serves as ever."""
    lib = os.path.join(tmp, "lib")
    os.makedirs(lib, exist_ok=True)
    with open(os.path.join(lib, "libavahi-client.so.3"), "w") as f:
        f.write("not a library\n")
    d = start_p1d(tmp, av, ["--source", "home=sim", "--listen", "0.0.0.0:80"],
                  env={"LD_LIBRARY_PATH": lib})
    try:
        c.check("a broken libavahi-client: named in one info line",
                d.wait_log(r"info: mdns: not announced: needs libavahi-client\.so\.3: ", 10)
                is not None, d.text()[-800:])
        c.check("... and p1d serves", http(80, "/api")[0] == 200)
    finally:
        c.check("... and stops cleanly", d.stop() == 0, d.text()[-800:])
    d = start_p1d(tmp, av, ["--source", "home=sim", "--listen", "0.0.0.0:80"],
                  env={"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + os.path.join(tmp, "nobus")})
    try:
        c.check("no system bus: said once, tried again later",
                d.wait_log(r"info: mdns: cannot reach avahi-daemon \([^)]*\); trying again every "
                           r"30 s", 10) is not None, d.text()[-800:])
        c.check("... and p1d serves", http(80, "/api")[0] == 200)
    finally:
        c.check("... and stops cleanly", d.stop() == 0, d.text()[-800:])


def test_config(c, tmp, av):
    """The keys in --check-config; a wrong value is refused with the key and the choices."""
    conf = os.path.join(tmp, "announce.conf")
    with open(conf, "w") as f:
        f.write("[http]\nannounce = maybe\n[source home]\nspec = sim\n")
    r = subprocess.run([P1D, "--config", conf, "--check-config"], capture_output=True, text=True,
                       timeout=10)
    c.check("announce = maybe: exit 2, the line, the key and the choices",
            r.returncode == 2 and "announce.conf:2" in r.stderr and "announce" in r.stderr and
            "auto|yes|no" in r.stderr, r.stderr)
    with open(conf, "w") as f:
        f.write("[http]\nannounce_name = %s\n[source home]\nspec = sim\n" % ("x" * 64))
    r = subprocess.run([P1D, "--config", conf, "--check-config"], capture_output=True, text=True,
                       timeout=10)
    c.check("a name of 64 bytes is refused (a DNS label holds 63)",
            r.returncode == 2 and "announce_name" in r.stderr, r.stderr)
    with open(conf, "w") as f:
        f.write("[http]\nannounce = yes\nannounce_name = Meterkast zolder\n"
                "[source home]\nspec = sim\n")
    r = subprocess.run([P1D, "--config", conf, "--check-config"], capture_output=True, text=True,
                       timeout=10)
    for args, want in ((["--listen", "0.0.0.0:80"],
                        "p1d: note: [http] announce: the HomeWizard P1 API (_hwenergy._tcp) and "
                        "the dashboard (_http._tcp) announced over mDNS (when avahi-daemon runs)\n"),
                       (["--listen", "0.0.0.0:8080"],
                        "p1d: note: [http] announce: the dashboard (_http._tcp) announced over "
                        "mDNS (when avahi-daemon runs); the HomeWizard API is not announced: "
                        "HomeWizard clients such as Home Assistant's integration talk to port 80 "
                        "only, and p1d listens on 8080\n"),
                       (["--listen", "127.0.0.1:8080"], ""),
                       (["--listen", "0.0.0.0:80", "--http-announce", "no"], "")):
        q = subprocess.run([P1D, "--source", "home=sim", "--check-config"] + args,
                           capture_output=True, text=True, timeout=10)
        c.check("--check-config %s: %s" % (" ".join(args), want.strip() or "no note"),
                q.returncode == 0 and q.stderr == want, q.stderr)
    c.check("--check-config prints both keys",
            r.returncode == 0 and re.search(r"^announce = yes", r.stdout, re.M) and
            re.search(r"^announce_name = Meterkast zolder", r.stdout, re.M), r.stdout + r.stderr)


def inside():
    c = Checks("test_zeroconf")
    need_p1d(c)
    loopback_up()
    # avahi-daemon keeps its pid file and socket in /run/avahi-daemon: under a tmpfs on /run of
    # this mount namespace, so the machine's own avahi-daemon, if any, is left alone (and a user
    # namespace, which may not create directories in the real /run, can make it).
    subprocess.run(["mount", "-t", "tmpfs", "p1d-test", "/run"], check=True)
    os.makedirs("/run/avahi-daemon", exist_ok=True)
    with tmpdir() as tmp:
        av = Avahi(tmp)
        try:
            try:
                av.start()
            except RuntimeError as e:
                if os.environ.get("P1_TEST_USERNS") != "1":
                    raise
                # As root of a user namespace avahi-daemon cannot hand its runtime directory to
                # its own user (not mapped there): run the suite as root to cover it.
                print("SKIP: avahi-daemon does not run in a user namespace (%s); run as root"
                      % str(e).strip())
                c.done()
            c.run([test_homewizard_discovery, test_auto_rules, test_scope, test_name_taken,
                   test_avahi_comes_and_goes, test_without_avahi, test_config], c, tmp, av)
        finally:
            av.close()
    c.done()


def main():
    if os.environ.get("P1_TEST_NETNS") == "1":
        return inside()
    c = Checks("test_zeroconf")
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        print("SKIP: %s not installed (apt-get install avahi-daemon avahi-utils dbus-daemon)"
              % ", ".join(missing))
        c.done()
    cmd = ["unshare", "--net", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run(cmd + ["true"], capture_output=True, text=True)
    if probe.returncode != 0:
        print("SKIP: cannot make a private network namespace (%s): %s"
              % (" ".join(cmd), probe.stderr.strip()))
        c.done()
    sys.stdout.flush()
    env = dict(os.environ, P1_TEST_NETNS="1", P1_TEST_USERNS="1" if os.geteuid() else "0")
    os.execvpe(cmd[0], cmd + [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


if __name__ == "__main__":
    main()
