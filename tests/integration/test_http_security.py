#!/usr/bin/env python3
"""test_http_security.py: what a p1d on a home LAN without authentication must still refuse or
hide: secrets of the configuration in the API, logs and --check-config, and in a config file
every user can read; price uploads sent by
pages of other origins (cross-site request forgery); requests under a foreign Host name (DNS
rebinding), two Host headers or a malformed one."""
import base64
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_helpers import (P1D, Checks, Daemon, free_port, http, need_p1d, run,  # noqa: E402
                            tmpdir)

T = Checks("test_http_security")
need_p1d(T)

KEY = "000102030405060708090A0B0C0D0E0F"
AK = "FFEEDDCCBBAA99887766554433221100"


def test_spec_secrets(tmp):
    """A decryption key given in the spec (":key=HEX") is a secret like [source] key: /api/meters
    shows the spec as "source", so the key must not be in it, nor in --check-config or errors."""
    spec = "sim:1:key=%s:ak=%s" % (KEY, AK)
    d = Daemon(["--source", "lux=" + spec, "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        st, _, b = http(port, "/api/meters")
        T.check("spec secrets: /api/meters answers", st == 200, st)
        src = json.loads(b)[0]["source"] if st == 200 else ""
        T.check("spec secrets: /api/meters has no key", KEY not in src and AK not in src, src)
        T.check("spec secrets: /api/meters shows the rest of the spec",
                src == "sim:1:key=********:ak=********", src)
        st, _, b = http(port, "/api/meters/lux")
        T.check("spec secrets: /api/meters/lux has no key", st == 200 and KEY.encode() not in b, b)
    finally:
        d.stop()
    T.check("spec secrets: the log has no key", KEY not in d.text() and AK not in d.text(),
            d.text()[-2000:])
    code, out, err = run(["--source", "lux=" + spec, "--check-config"])
    T.check("spec secrets: --check-config passes", code == 0, err)
    T.check("spec secrets: --check-config masks the key in the spec",
            KEY not in out and AK not in out and "spec = sim:1:key=********:ak=********" in out,
            out)
    # Errors that quote the spec or the value: a key given twice, a key of the wrong length.
    code, out, err = run(["--source", "lux=sim:key=%s:key=%s" % (KEY, KEY), "--check-config"])
    T.check("spec secrets: an error quoting the spec masks the key",
            code == 2 and KEY not in err and "key=********" in err, err)
    cfg = os.path.join(tmp, "bad-token.conf")
    with open(cfg, "w") as f:
        f.write("[http]\ntoken = %s\n[source a]\nspec = sim\n" % ("t" * 200))
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("spec secrets: an over-long token is not echoed in the error",
            code == 2 and "t" * 100 not in err and "token" in err, err)
    cfg = os.path.join(tmp, "bad-key.conf")
    with open(cfg, "w") as f:
        f.write("[source a]\nspec = sim\nkey = %s\n" % ("k" * 300))
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("spec secrets: an over-long source key is not echoed in the error",
            code == 2 and "k" * 100 not in err, err)


PRICES = b"time,price\n2030-01-01T10:00,9.99\n2030-01-01T11:00,9.99\n"


def raw(port, request, timeout=5):
    """Sends request bytes as they are (Host and Origin as a browser would set them); returns
    (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    end = time.time() + timeout
    data = b""
    try:
        s.sendall(request)
        while time.time() < end:  # a stream that was served never ends by itself
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


def upload(port, headers, method="POST", body=PRICES, host=None):
    hdr = "".join("%s: %s\r\n" % kv for kv in headers.items())
    req = ("%s /api/prices?kind=power HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n"
           "Connection: close\r\n\r\n" % (method, host or "127.0.0.1:%d" % port, hdr, len(body)))
    return raw(port, req.encode() + body)


def stored(port, auth=None):
    st, _, b = http(port, "/api/prices?from=2030-01-01&to=2030-01-02",
                    headers={"Authorization": auth} if auth else None)
    return len(json.loads(b)["power"]) if st == 200 else -1


def test_csrf(tmp):
    """Any page the user visits can send a "simple" request (a form, or fetch() with text/plain)
    to p1d's LAN address; without authentication it must not be able to replace the prices."""
    db = os.path.join(tmp, "csrf.db")
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--db", db,
                "--http-allowed-hosts", "p1.example.org"], tmp)
    try:
        port = d.http_port()
        own = "http://127.0.0.1:%d" % port
        for what, hdrs in (
                ("fetch text/plain from another origin",
                 {"Origin": "http://evil.example", "Content-Type": "text/plain"}),
                ("form (urlencoded) from another origin",
                 {"Origin": "https://evil.example",
                  "Content-Type": "application/x-www-form-urlencoded"}),
                ("a sandboxed page (Origin: null)",
                 {"Origin": "null", "Content-Type": "text/plain"}),
                ("a page of the same host, another port",
                 {"Origin": "http://127.0.0.1:1", "Content-Type": "text/plain"}),
                ("only a Referer of another origin",
                 {"Referer": "http://evil.example/page.html", "Content-Type": "text/csv"})):
            st, b = upload(port, hdrs)
            T.check("csrf: %s is 403" % what,
                    st == 403 and json.loads(b)["error"]["code"] == "cross_origin", (st, b))
        st, b = upload(port, {"Origin": "http://evil.example", "Content-Type": "text/csv"}, "PUT")
        T.check("csrf: PUT from another origin is 403", st == 403, (st, b))
        T.check("csrf: nothing was stored", stored(port) == 0, stored(port))
        st, b = upload(port, {"Content-Type": "text/csv"})
        T.check("csrf: without Origin (curl, scripts) the upload works", st == 200, (st, b))
        for what, hdrs, host in (
                ("own origin", {"Origin": own}, None),
                ("own origin, other case", {"Origin": own.upper().replace("HTTP", "http")}, None),
                ("own page as Referer", {"Referer": own + "/index.html"}, None),
                ("default port in Host", {"Origin": "http://p1d.local"}, "p1d.local:80"),
                ("an https proxy in front", {"Origin": "https://p1.example.org"},
                 "p1.example.org")):
            st, b = upload(port, dict(hdrs, **{"Content-Type": "text/plain"}), host=host)
            T.check("csrf: %s is allowed" % what, st == 200, (st, b))
    finally:
        d.stop()
    # An origin named in cors_origin may upload ("a page of one's own"), others still not; with
    # basic auth the browser sends the credentials by itself, so the check applies there too.
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--db", db,
                "--http-cors-origin", "http://mine.example:8000", "--http-basic-user", "ann",
                "--http-basic-pass", "pw"], tmp)
    try:
        port = d.http_port()
        auth = "Basic " + base64.b64encode(b"ann:pw").decode()
        st, b = upload(port, {"Origin": "http://mine.example:8000", "Authorization": auth,
                              "Content-Type": "text/plain"})
        T.check("csrf: the cors_origin page may upload", st == 200, (st, b))
        st, b = upload(port, {"Origin": "http://evil.example", "Authorization": auth,
                              "Content-Type": "text/plain"})
        T.check("csrf: with basic auth a foreign page is still 403", st == 403, (st, b))
        st, b = upload(port, {"Origin": "https://mine.example:8000", "Authorization": auth,
                              "Content-Type": "text/plain"})
        T.check("csrf: cors_origin's scheme counts", st == 403, (st, b))
    finally:
        d.stop()


def get(port, path, host, headers=None):
    hdr = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    return raw(port, ("GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n" %
                      (path, host, hdr)).encode(), timeout=2)


def test_rebinding(tmp):
    """A page of a name the attacker controls that then resolves to p1d's address reads the API
    as its own origin; its requests carry that name as Host, which p1d must refuse when no token
    protects it. Names public DNS cannot give out keep working."""
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0",
                "--http-allowed-hosts", "p1.example.org, *.home.example.net"], tmp)
    try:
        port = d.http_port()
        for host in ("rebind.evil.example:%d" % port, "rebind.evil.example",
                     "1.2.3.4.nip.evil.example", "p1d.local.evil.example", "example.org",
                     "home.example.net", "[rebind.evil]"):
            for path in ("/api/now", "/", "/api/stream"):
                st, b = get(port, path, host)
                T.check("rebinding: GET %s with Host %s is 403" % (path, host),
                        st == 403 and json.loads(b)["error"]["code"] == "host_not_allowed",
                        (st, b[:200]))
        hostname = socket.gethostname()
        for host in ("127.0.0.1:%d" % port, "127.0.0.1", "[::1]:%d" % port, "localhost:%d" % port,
                     "raspberrypi:8080", "p1d.local", "P1D.Local.:%d" % port, "nas.lan",
                     "meter.home.arpa", "p1d.internal", "app.localhost", "nas.home",
                     "pi.localdomain", "raspberrypi.fritz.box:8080", hostname,
                     "p1.example.org:443", "a.home.example.net", "192.168.1.10:8080"):
            st, b = get(port, "/api/meters", host)
            T.check("rebinding: Host %s is served" % host, st == 200, (st, b[:200]))
        st, _ = raw(port, b"GET /api/meters HTTP/1.0\r\n\r\n")
        T.check("rebinding: HTTP/1.0 without Host is served", st == 200, st)
        T.check("rebinding: refusals beyond 5 a second are counted, not logged",
                d.wait_log(r"http: \d+ more refused Host names not logged", 3) is not None,
                d.text()[-1500:])
        time.sleep(1.1)  # a new second of the log limit
        for _ in range(3):
            get(port, "/api/now", "again.evil.example")
        lines = d.text().count("Host 'again.evil.example'")
        T.check("rebinding: a refused name is logged once in a row", lines == 1, d.text()[-1500:])
    finally:
        d.stop()
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--http-allowed-hosts", "*"], tmp)
    try:
        port = d.http_port()
        st, b = get(port, "/api/meters", "anything.example.com")
        T.check("rebinding: allowed_hosts = * turns the guard off", st == 200, (st, b[:200]))
    finally:
        d.stop()
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--token", "t0k"], tmp)
    try:
        port = d.http_port()
        st, b = get(port, "/api/meters", "p1.example.com", {"Authorization": "Bearer t0k"})
        T.check("rebinding: with a token any Host name is served", st == 200, (st, b[:200]))
        st, b = get(port, "/api/meters", "p1.example.com")
        T.check("rebinding: with a token, no token is still 401", st == 401, (st, b[:200]))
    finally:
        d.stop()


def test_host_header(tmp):
    """RFC 9112 (3.2): a request with two Host headers or one that is no host[:port] is 400 (a
    proxy in front may have routed by another Host than the one the guard read); whitespace after
    the value is no part of the name; 127.1 is an IP address as curl and Python send it."""
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()

        def status(head):
            return raw(port, b"GET /api/meters HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n",
                       timeout=2)[0]
        for what, head in (
                ("two Host headers, the foreign one second",
                 b"Host: 127.0.0.1\r\nHost: rebind.evil.example\r\n"),
                ("two Host headers, the foreign one first",
                 b"Host: rebind.evil.example\r\nhost: 127.0.0.1\r\n"),
                ("a port that is no number", b"Host: 127.0.0.1:80.evil.example\r\n"),
                ("text after an IPv6 literal", b"Host: [::1]evil.example\r\n"),
                ("an IPv6 literal without ]", b"Host: [::1\r\n"),
                ("a space inside", b"Host: 127.0.0.1 evil.example\r\n"),
                ("a second port", b"Host: p1d.lan:8080:80\r\n")):
            st = status(head)
            T.check("host header: %s is 400" % what, st == 400, st)
        for what, head in (
                ("trailing spaces", b"Host: 127.0.0.1:%d  \r\n" % port),
                ("a tab after the name", b"Host: p1d.local\t\r\n"),
                ("127.1 (curl and Python send it as typed)", b"Host: 127.1:%d\r\n" % port),
                ("an empty Host", b"Host: \r\n"),
                ("an IPv4-mapped IPv6 literal", b"Host: [::ffff:127.0.0.1]:%d\r\n" % port)):
            st = status(head)
            T.check("host header: %s is served" % what, st == 200, st)
        for what, head in (("a name ending in fritz.box", b"Host: evilfritz.box\r\n"),
                           ("a foreign name with trailing spaces",
                            b"Host: rebind.evil.example  \r\n"),
                           ("a foreign IDN name", b"Host: xn--bcher-kva.example\r\n")):
            st = status(head)
            T.check("host header: %s is 403" % what, st == 403, st)
    finally:
        d.stop()
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--token", "t0k"], tmp)
    try:
        port = d.http_port()
        st = raw(port, b"GET /api/meters HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n"
                 b"Authorization: Bearer t0k\r\nConnection: close\r\n\r\n", timeout=2)[0]
        T.check("host header: two Host headers are 400 with a token too", st == 400, st)
    finally:
        d.stop()


def test_readable_secrets(tmp):
    """Like ssh and mosquitto, p1d warns when a config file every local user can read holds
    passwords or keys, and names them (not their values)."""
    cfg = os.path.join(tmp, "secrets.conf")
    with open(cfg, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:0\n[mqtt]\nhost = 127.0.0.1\nport = 1\npassword = mqttpw\n"
                "[source lux]\nspec = sim:key=%s\n" % KEY)
    os.chmod(cfg, 0o644)
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("readable secrets: --check-config warns about a 0644 file with secrets",
            code == 0 and "readable by every user (mode 0644)" in err and
            "[mqtt] password" in err and "[source lux] key" in err, err)
    T.check("readable secrets: the warning has no secret value",
            "mqttpw" not in err and KEY not in err, err)
    d = Daemon(["-c", cfg, "--db", os.path.join(tmp, "secrets.db")], tmp)
    try:
        d.http_port()
        T.check("readable secrets: the start warns", "readable by every user" in d.text(),
                d.text()[-1500:])
    finally:
        d.stop()
    os.chmod(cfg, 0o640)
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("readable secrets: no warning for mode 0640", code == 0 and "readable" not in err, err)
    # the example file's way: an empty `token =` left beside token_file holds no secret
    tok = os.path.join(tmp, "api.token")
    with open(tok, "w") as f:
        f.write("t0ken-from-file\n")
    os.chmod(tok, 0o600)
    cfg2 = os.path.join(tmp, "tokenfile.conf")
    with open(cfg2, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:0\ntoken =\ntoken_file = %s\n[source a]\nspec = sim\n"
                % tok)
    os.chmod(cfg2, 0o644)
    code, out, err = run(["-c", cfg2, "--check-config"])
    T.check("readable secrets: an empty token = beside token_file draws no warning",
            code == 0 and "readable by every user" not in err, err)
    os.chmod(cfg, 0o644)
    code, out, err = run(["-c", cfg, "--check-config", "--mqtt-password", "", "--key", "lux=" + KEY])
    T.check("readable secrets: a file secret a flag overrides is not named, the spec's key is",
            code == 0 and "[source lux] key" in err and "[mqtt] password" not in err, err)
    with open(cfg, "w") as f:
        f.write("[http]\nlisten = 127.0.0.1:0\n[source a]\nspec = sim\n")
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("readable secrets: no warning for a 0644 file without secrets",
            code == 0 and "readable" not in err, err)


def test_url_password(tmp):
    """An InfluxDB url may carry user:password@ (curl sends it as basic auth): the password is
    not printed by --check-config, errors, the start line or the write failures, and a readable
    config file that holds one is warned about."""
    url = "http://writer:urlpw-s3cret@127.0.0.1:%d" % free_port()
    code, out, err = run(["--source", "s=sim", "--db", os.path.join(tmp, "u.db"),
                          "--influxdb-url", url, "--influxdb-database", "p1", "--check-config"])
    T.check("url password: --check-config shows url = http://writer:********@...",
            code == 0 and "url = http://writer:********@127.0.0.1:" in out and
            "urlpw" not in out + err, out[-1500:] + err)
    code, out, err = run(["--source", "s=sim", "--db", os.path.join(tmp, "u.db"),
                          "--influxdb-url", url, "--check-config"])
    T.check("url password: the error about a url without database masks it",
            code == 2 and "writer:********@" in err and "urlpw" not in err, err)
    code, out, err = run(["--source", "s=sim", "--db", os.path.join(tmp, "u.db"),
                          "--influxdb-url", "ftp://writer:urlpw-s3cret@h", "--influxdb-database",
                          "p1", "--check-config"])
    T.check("url password: the error about a url that is not http masks it",
            code != 0 and "writer:********@h" in err and "urlpw" not in err, err)
    code, out, err = run(["--source", "s=sim", "--db", os.path.join(tmp, "u.db"), "--azure-endpoint",
                          "https://acct.table.core.windows.net/?sv=2019-02-02&sig=SASs3cret",
                          "--azure-account", "acct", "--azure-table", "t", "--azure-sas", "sv=1",
                          "--check-config"])
    T.check("url password: an Azure endpoint pasted with its SAS is refused without quoting the "
            "signature", code == 2 and "windows.net/?********'" in err and "SASs3cret" not in err,
            err)
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--db", os.path.join(tmp, "u.db"),
                "--influxdb-url", url, "--influxdb-database", "p1", "--influxdb-interval", "1s"],
               tmp)
    try:
        d.http_port()
        failed = d.wait_log(r"influxdb: write to .* failed", 15)
        T.check("url password: the start line and the write failure name the url without it",
                failed is not None and "writer:********@" in d.text() and
                "urlpw" not in d.text(), d.text()[-1500:])
    finally:
        d.stop()
    cfg = os.path.join(tmp, "url.conf")
    with open(cfg, "w") as f:
        f.write("[source a]\nspec = sim\n[store]\ndb = %s\n[influxdb]\nurl = %s\ndatabase = p1\n"
                % (os.path.join(tmp, "u.db"), url))
    os.chmod(cfg, 0o644)
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("url password: a 0644 file with one is warned about ([influxdb] url)",
            code == 0 and "readable by every user" in err and "[influxdb] url" in err and
            "urlpw" not in err, err)
    with open(cfg, "w") as f:
        f.write("[source a]\nspec = sim\n[store]\ndb = %s\n[influxdb]\nurl = %s\ndatabase = p1\n"
                % (os.path.join(tmp, "u.db"), "http://writer@127.0.0.1:8086"))
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("url password: a url with a user and no password is shown as it is, no warning",
            code == 0 and "readable" not in err and "url = http://writer@127.0.0.1:8086" in out,
            out[-800:] + err)
    # a token in a URL's query (ENTSO-E's securityToken, an api_key): masked, and warned about
    entsoe = ("https://web-api.tp.entsoe.eu/api?documentType=A44&periodStart={from_compact}"
              "&securityToken=ENTs3cret&periodEnd={to_compact}")
    with open(cfg, "w") as f:
        f.write("[source a]\nspec = sim\n[store]\ndb = %s\n[prices]\nfetch_url = %s\n"
                "fetch_gas_url = https://gas.example/p?api_key=GASs3cret&bzn=NL\n"
                % (os.path.join(tmp, "u.db"), entsoe))
    code, out, err = run(["-c", cfg, "--check-config"])
    T.check("url token: --check-config shows a secret query parameter as ******** and the "
            "others as they are",
            code == 0 and "securityToken=********&periodEnd={to_compact}" in out and
            "documentType=A44" in out and "api_key=********&bzn=NL" in out and
            "s3cret" not in out + err, out[-800:] + err)
    T.check("url token: a 0644 file with one is warned about ([prices] fetch_url)",
            "readable by every user" in err and "[prices] fetch_url" in err and
            "[prices] fetch_gas_url" in err, err)


def test_db_mode(tmp):
    """The history p1d creates (and its -wal, and a p1 backup of it) is not readable by every
    local user under the usual umask 022: it shows when the household is at home."""
    old = os.umask(0o022)
    try:
        db = os.path.join(tmp, "mode.db")
        d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--db", db], tmp)
        try:
            d.http_port()
            d.wait_meter("s", lambda m: m.get("telegrams", 0) >= 2, 10)
            modes = {p: oct(os.stat(p).st_mode & 0o777) for p in (db, db + "-wal")
                     if os.path.exists(p)}
        finally:
            d.stop()
        T.check("db mode: a new history and its -wal are 0640 under umask 022 (%s)" % modes,
                len(modes) == 2 and set(modes.values()) == {"0o640"}, modes)
        p1 = os.path.join(os.path.dirname(P1D), "p1")
        out = os.path.join(tmp, "copy.db")
        r = subprocess.run([p1, "backup", "--db", db, out], capture_output=True, timeout=30)
        mode = oct(os.stat(out).st_mode & 0o777) if os.path.exists(out) else None
        T.check("db mode: p1 backup writes its copy 0640 (%s)" % mode,
                r.returncode == 0 and mode == "0o640", r.stderr[-500:])
        os.chmod(db, 0o644)
        d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--db", db], tmp)
        try:
            d.http_port()
        finally:
            d.stop()
        T.check("db mode: an existing history keeps the mode its owner gave it",
                oct(os.stat(db).st_mode & 0o777) == "0o644")
    finally:
        os.umask(old)


def test_nosniff(tmp):
    """Every response tells browsers not to guess its type: error messages quote the request."""
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0"], tmp)
    try:
        port = d.http_port()
        d.wait_log(r"telegram|simulated", 5)
        time.sleep(1.2)  # a first reading, for the cached bodies
        for method, path in (("GET", "/api/now"), ("GET", "/api/meters/%3Cscript%3E"),
                             ("GET", "/metrics"), ("GET", "/api/v1/telegram"),
                             ("GET", "/api/v1/data"), ("HEAD", "/api/stream"),
                             ("OPTIONS", "/api/now"), ("GET", "/healthz"), ("GET", "/nope"),
                             ("POST", "/api/now"), ("GET", "/")):
            st, hdrs, _ = http(port, path, method)
            T.check("nosniff: %s %s (%d) carries nosniff" % (method, path, st),
                    hdrs.get("X-Content-Type-Options") == "nosniff", hdrs)
    finally:
        d.stop()


def test_stream_cap(tmp):
    """Streams are exempt from the timeouts; clients opening many must not take every connection:
    the dashboard's own requests still need one. And reaching max_connections is logged."""
    d = Daemon(["--source", "s=sim", "--listen", "127.0.0.1:0", "--http-max-connections", "100"],
               tmp)
    socks = []
    try:
        port = d.http_port()
        ok, last = 0, b""
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            try:
                head = s.recv(4096)
            except socket.timeout:
                head = b"(no answer)"
            ok += head.startswith(b"HTTP/1.1 200")
            if head.startswith(b"HTTP/1.1 200"):
                socks.append(s)
            else:
                last = head
                s.close()  # as a refused client does
        T.check("stream cap: 50 of 100 streams open with max_connections 100", ok == 50, ok)
        T.check("stream cap: the others get 503 unavailable",
                b'"unavailable"' in last and b"50 streams" in last, last)
        for path in ("/api/now", "/"):
            try:
                st = http(port, path, timeout=5)[0]
            except OSError as e:
                st = repr(e)
            T.check("stream cap: %s still answers" % path, st == 200, st)
        for _ in range(60):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        T.check("stream cap: reaching max_connections is logged",
                d.wait_log(r"warn: http: 100 connections open, the most \[http\] max_connections "
                           r"allows", 5) is not None, d.text()[-1500:])
        for s in socks:
            s.close()
        socks = []
        T.check("stream cap: falling below it again is logged",
                d.wait_log(r"below max_connections again", 5) is not None, d.text()[-1500:])
    finally:
        for s in socks:
            s.close()
        d.stop()


with tmpdir() as tmp:
    T.run((test_spec_secrets, test_csrf, test_rebinding, test_host_header, test_readable_secrets,
           test_url_password, test_db_mode, test_nosniff, test_stream_cap), tmp)
T.done()
