"""daemon_helpers.py: shared pieces of the test_daemon_*.py suites: telegrams, a p1d process, checks."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
P1D = os.path.abspath(os.environ.get("P1D", os.path.join(ROOT, "build", "p1d")))  # a test may chdir
SANITIZER_REPORTS = []  # logs of p1d runs that printed a sanitizer report (P1D=build/san/p1d)
# P1D=build/tsan/p1d (make TSAN=1): reports inside system libraries are suppressed, see tsan.supp.
os.environ.setdefault("TSAN_OPTIONS", "suppressions=" + os.path.join(ROOT, "tests", "integration",
                                                                    "tsan.supp"))


def crc16(data):
    """CRC-16/ARC as used by DSMR."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def meter_time(unix):
    """0-0:1.0.0's value for unix seconds: Dutch local time and its S/W letter."""
    import datetime
    import zoneinfo
    lt = datetime.datetime.fromtimestamp(unix, zoneinfo.ZoneInfo("Europe/Amsterdam"))
    return lt.strftime("%y%m%d%H%M%S") + ("S" if lt.dst() else "W")


def telegram(i=0, crc=True, seconds=None, when=None):
    """A DSMR 5 telegram numbered i (its time and import register move with i); its time is
    2024-01-15 plus `seconds` (default i), or the unix time `when`."""
    t = (seconds if seconds is not None else i) % 86400
    stamp = meter_time(when) if when is not None else "240115%02d%02d%02dW" % (
        t // 3600, (t // 60) % 60, t % 60)
    body = (
        "/ISk5\\2MT382-1000\r\n\r\n"
        "1-3:0.2.8(50)\r\n"
        "0-0:1.0.0(%s)\r\n"
        "0-0:96.1.1(4530303034303031353934373534343134)\r\n"
        "1-0:1.8.1(%06d.%03d*kWh)\r\n"
        "1-0:1.8.2(000456.789*kWh)\r\n"
        "1-0:2.8.1(000000.000*kWh)\r\n"
        "1-0:2.8.2(000000.000*kWh)\r\n"
        "0-0:96.14.0(0002)\r\n"
        "1-0:1.7.0(00.%03d*kW)\r\n"
        "1-0:2.7.0(00.000*kW)\r\n"
        "!" % (stamp, 100 + i // 1000, i % 1000, i % 1000)
    ).encode()
    c = crc16(body)
    if not crc:
        c ^= 0x0101
    return body + b"%04X\r\n" % c


def be_telegram(t, wh, kw, demand_kw=1.5, peak_kw=4.321, peak_at=None):
    """A Fluvius e-MUCS (Belgian) telegram at unix t: import register wh (Wh) on tariff 1, import
    power kw, the meter's quarter-hour demand and this month's peak (at peak_at, default a day
    before t)."""
    body = ("/FLU5\\253769484_A\r\n\r\n0-0:96.1.4(50217)\r\n"
            "0-0:96.1.1(3153414733313031303231363035)\r\n0-0:1.0.0(%s)\r\n"
            "1-0:1.8.1(%010.3f*kWh)\r\n1-0:1.8.2(000000.000*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n0-0:96.14.0(0001)\r\n"
            "1-0:1.4.0(%06.3f*kW)\r\n1-0:1.6.0(%s)(%06.3f*kW)\r\n"
            "1-0:1.7.0(%06.3f*kW)\r\n1-0:2.7.0(00.000*kW)\r\n!"
            % (meter_time(t), wh / 1000, demand_kw,
               meter_time(t - 86400 if peak_at is None else peak_at), peak_kw, kw)).encode()
    return body + b"%04X\r\n" % crc16(body)


def mbus_telegram(i, now, mbus):
    """A DSMR 5 Iskra telegram numbered i (tariff 1 import 1234.i kWh) at unix time now, with the
    M-Bus object lines mbus (each ending in CRLF) before its end line."""
    body = ("/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(%s)\r\n"
            "1-0:1.8.1(001234.%03d*kWh)\r\n1-0:1.8.2(000765.432*kWh)\r\n"
            "1-0:2.8.1(000000.000*kWh)\r\n1-0:2.8.2(000000.000*kWh)\r\n0-0:96.14.0(0001)\r\n"
            "1-0:1.7.0(00.345*kW)\r\n1-0:2.7.0(00.000*kW)\r\n%s!"
            % (meter_time(now), i, mbus)).encode()
    return body + b"%04X\r\n" % crc16(body)


def to_7e1(data):
    """The bytes a 7E1 sender produces as seen by an 8N1 receiver: even parity in bit 7."""
    out = bytearray()
    for b in data:
        out.append(b | (0x80 if bin(b).count("1") % 2 else 0))
    return bytes(out)


class Checks:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s" % what)
        else:
            self.failed += 1
            print("FAIL %s %s" % (what, detail))
        sys.stdout.flush()
        return ok

    def run(self, tests, *args):
        """Calls each test with args; a test that raises is one failed check, the others run."""
        for fn in tests:
            try:
                fn(*args)
            except Exception as e:  # a crash of one test must not hide the others
                self.check(fn.__name__, False, repr(e))

    def done(self):
        for log in SANITIZER_REPORTS:
            self.check("no sanitizer report", False, log[-3000:])
        print("%s: %d passed, %d failed" % (self.name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)


class Daemon:
    """A p1d process with its stderr in a file; always stop() it (in a finally)."""

    def __init__(self, args, tmp, stdin=None, env=None, prefix=()):
        """prefix: a command that runs p1d (setpriv --reuid=... to drop root)."""
        self.log_path = os.path.join(tmp, "p1d-%d.log" % int(time.time() * 1000000))
        self.log = open(self.log_path, "wb")
        e = dict(os.environ)
        e.pop("JOURNAL_STREAM", None)
        e.pop("NOTIFY_SOCKET", None)
        if env:
            e.update(env)
        self.proc = subprocess.Popen(list(prefix) + [P1D] + args, stdout=subprocess.DEVNULL, stderr=self.log,
                                     stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                     env=e)
        self.port = None

    def text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Waits until pattern matched count times; returns the last match or None."""
        end = time.time() + timeout
        rx = re.compile(pattern)
        while time.time() < end:
            found = list(rx.finditer(self.text()))
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                found = list(rx.finditer(self.text()))
                return found[count - 1] if len(found) >= count else None
            time.sleep(0.05)
        return None

    def http_port(self, timeout=10.0):
        m = self.wait_log(r"dashboard and API at http://[^ ]*:(\d+)/", timeout)
        if m:
            self.port = int(m.group(1))
        return self.port

    def meters(self):
        if self.port is None:
            self.http_port()
        with urllib.request.urlopen("http://127.0.0.1:%d/api/meters" % self.port, timeout=5) as r:
            data = json.loads(r.read())
        if isinstance(data, dict) and "meters" in data:
            data = data["meters"]
        return {m["name"]: m for m in data}

    def meter(self, name):
        try:
            return self.meters().get(name, {})
        except Exception:
            return {}

    def wait_meter(self, name, pred, timeout=10.0):
        end = time.time() + timeout
        m = {}
        while time.time() < end:
            m = self.meter(name)
            if m and pred(m):
                return m
            time.sleep(0.05)
        return None

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns the exit code (kills after timeout)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
            text = self.text()
            if "Sanitizer" in text or "runtime error:" in text:
                SANITIZER_REPORTS.append(text)
        return self.proc.returncode


def run(args, timeout=10, stdin=None, cwd=None):
    """Runs p1d to completion (in cwd); returns (code, stdout, stderr)."""
    p = subprocess.run([P1D] + args, capture_output=True, timeout=timeout, input=stdin, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def http(port, path, method="GET", body=None, headers=None, timeout=10):
    """A request to p1d on 127.0.0.1: (status, headers, body), also for HTTP error statuses."""
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def write_conf(path, text):
    """Replaces the config file at path at once, as an editor saving it would."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def start_replay(checks, tmp, name, conf_text, capture, what):
    """p1d with the configuration conf_text (in tmp/NAME.conf) replaying the file `capture` as
    meter home on its own clock into the history tmp/NAME.db, once the store holds all of it:
    (daemon, port or None as checked under `what`, config path)."""
    conf = os.path.join(tmp, name + ".conf")
    write_conf(conf, conf_text)
    d = Daemon(["--config", conf, "--source", "home=file:%s:clock=meter" % capture,
                "--db", os.path.join(tmp, name + ".db"), "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        checks.check(what, port is not None, d.text())
        if port is not None:
            d.wait_meter("home", lambda m: m.get("state") == "stopped")
            time.sleep(1.5)  # the store commits once a second
    except BaseException:
        d.stop()
        raise
    return d, port, conf


def stop_process(proc, timeout=10):
    """SIGTERM to a subprocess, then SIGKILL when it has not ended after timeout seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Cable:
    """A pty whose slave is reachable under a fixed symlink, like /dev/serial/by-id/..."""

    def __init__(self, link):
        self.link = link
        self.master = None
        self.plug()

    def plug(self):
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)  # the pty itself, under the symlink
        os.close(slave)
        tmp = self.link + ".new"
        os.symlink(self.path, tmp)
        os.replace(tmp, self.link)

    def unplug(self):
        os.unlink(self.link)
        os.close(self.master)
        self.master = None

    def send(self, data):
        os.write(self.master, data)

    def close(self):
        if self.master is not None:
            os.close(self.master)
            self.master = None


def fake_dongle(port=0):
    """A listening TCP socket on 127.0.0.1 that p1d's tcp: source connects to, as a P1 dongle;
    accept() waits at most 10 s."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    s.settimeout(10)
    return s


# An LD_PRELOAD shim (build_shim()) that moves p1d's wall clock by the number of seconds in the
# file named by P1D_TEST_OFFSET, read on every call (so a test can set the clock while p1d runs);
# the monotonic clock is left alone.
CLOCK_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
static long offset(void)
{
    long s = 0;
    const char *p = getenv("P1D_TEST_OFFSET");
    FILE *f = p ? fopen(p, "r") : NULL;
    if (f) {
        if (fscanf(f, "%ld", &s) != 1)
            s = 0;
        fclose(f);
    }
    return s;
}
int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    int rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += offset();
    return rc;
}
time_t time(time_t *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
int gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    (void)tz;
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}
"""


# An LD_PRELOAD shim (build_shim()): two.p1d.test has two addresses, 127.0.0.2, where nothing
# listens (its connect is refused after EINPROGRESS, as an unanswered IPv6 address is), then
# 127.0.0.1.
TWO_ADDR_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))dlsym(
            RTLD_NEXT, "getaddrinfo");
    if (!node || strcmp(node, "two.p1d.test") != 0 || (hints && (hints->ai_flags & AI_NUMERICHOST)))
        return real(node, service, hints, res);
    struct addrinfo *first, *second, *ai;
    int rc = real("127.0.0.2", service, hints, &first);
    if (rc != 0)
        return rc;
    rc = real("127.0.0.1", service, hints, &second);
    if (rc != 0) {
        freeaddrinfo(first);
        return rc;
    }
    for (ai = first; ai->ai_next; ai = ai->ai_next)
        ;
    ai->ai_next = second; /* glibc's freeaddrinfo() frees node by node */
    *res = first;
    return 0;
}
"""


def build_shim(tmp, name, source):
    """Compiles C source into tmp/name.so for LD_PRELOAD; returns its path, or None (and says
    why) when there is no compiler or it fails."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        print("SKIP: no C compiler for the %s shim" % name)
        return None
    src = os.path.join(tmp, name + ".c")
    so = os.path.join(tmp, name + ".so")
    with open(src, "w") as f:
        f.write(source)
    r = subprocess.run([cc, "-shared", "-fPIC", "-o", so, src], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        print("SKIP: cannot build the %s shim: %s" % (name, r.stderr[:200]))
        return None
    return so


def slow_dns_shim(tmp, names):
    """An LD_PRELOAD shim (build_shim()) whose getaddrinfo() makes some names slow: names maps a
    host name to (ms, answer), where answer is an address looked up instead ("127.0.0.1") or an
    EAI_* name to fail with ("EAI_AGAIN", "EAI_NONAME"). Numeric lookups and other names go to
    the real resolver. Returns the .so path, or None (said why)."""
    cases = []
    for name, (ms, answer) in sorted(names.items()):
        act = ("return %s;" % answer if answer.startswith("EAI_")
               else 'return real("%s", service, hints, res);' % answer)
        cases.append('    if (node && !numeric && !strcmp(node, "%s")) {\n'
                     '        usleep(%d * 1000);\n        %s\n    }\n' % (name, ms, act))
    source = ("#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <netdb.h>\n"
              "#include <string.h>\n#include <unistd.h>\n"
              "int getaddrinfo(const char *node, const char *service,\n"
              "                const struct addrinfo *hints, struct addrinfo **res)\n{\n"
              "    int (*real)(const char *, const char *, const struct addrinfo *,\n"
              "                struct addrinfo **) =\n"
              "        (int (*)(const char *, const char *, const struct addrinfo *,\n"
              "                 struct addrinfo **))dlsym(RTLD_NEXT, \"getaddrinfo\");\n"
              "    int numeric = hints && (hints->ai_flags & AI_NUMERICHOST);\n"
              + "".join(cases) + "    return real(node, service, hints, res);\n}\n")
    return build_shim(tmp, "slowdns", source)


def burst(port, path, n):
    """Sends n GETs of path at the same instant, each on its own connection; returns (sent at,
    threads, results), each result (seconds after sending, status line, body bytes) appended when
    its connection closed (join the threads first)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=120) for _ in range(n)]
    time.sleep(0.2)
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode()
    results = []
    t0 = time.time()
    for s in socks:
        s.sendall(req)

    def drain(s):
        data = b""
        try:
            while True:
                b = s.recv(1 << 20)
                if not b:
                    break
                data += b
        except OSError:
            pass
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        results.append((time.time() - t0, head.split(b"\r\n")[0], body))

    threads = [threading.Thread(target=drain, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    return t0, threads, results


def worst_latency(port, seconds, step=0.05):
    """The slowest of back-to-back GET /api/meters over `seconds` (a stalled loop answers late);
    99.0 when one fails."""
    worst = 0.0
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.time()
        try:
            http(port, "/api/meters", timeout=30)
        except OSError:
            return 99.0
        worst = max(worst, time.time() - t0)
        time.sleep(step)
    return worst


def wait_for(pred, timeout, step=0.2):
    """Polls pred until it returns something true (returned) or timeout seconds pass (then its
    last value)."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="p1d-test-")


def need_p1d(checks):
    if not os.access(P1D, os.X_OK):
        print("SKIP: %s not built (run make)" % P1D)
        checks.done()
