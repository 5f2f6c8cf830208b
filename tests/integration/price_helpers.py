"""price_helpers.py: a price server on 127.0.0.1 for the tests of p1d's own price fetching
([prices] fetch_url), and the days p1d asks for."""
import datetime
import http.server as httpserver
import threading
import time
import urllib.parse
import zoneinfo

ZONE = zoneinfo.ZoneInfo("Europe/Amsterdam")


def days():
    """(today 00:00, the day after tomorrow 00:00) local, as aware datetimes."""
    now = datetime.datetime.now(ZONE)
    d0 = now.date()
    start = datetime.datetime(d0.year, d0.month, d0.day, tzinfo=ZONE)
    d2 = d0 + datetime.timedelta(days=2)
    return start, datetime.datetime(d2.year, d2.month, d2.day, tzinfo=ZONE)


def utc(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PriceServer:
    """A price server on 127.0.0.1: each path has a list of answers, taken one per request (the
    last one repeats). An answer is (status, content type, body[, headers]) or a function of the
    query that returns one; ("hang", "", seconds) answers nothing for that long. Every request is
    recorded in requests as (path, query, raw path), and with its method, headers and body in
    calls."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        self.calls = []
        outer = self

        class H(httpserver.BaseHTTPRequestHandler):
            def answer(self, method):
                u = urllib.parse.urlparse(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                q = urllib.parse.parse_qs(u.query)
                outer.requests.append((u.path, q, self.path))
                outer.calls.append({"method": method, "path": u.path, "query": q,
                                    "headers": dict(self.headers.items()), "body": body})
                answers = outer.routes.get(u.path, [(404, "text/plain", b"no such price list")])
                a = answers.pop(0) if len(answers) > 1 else answers[0]
                if callable(a):
                    a = a(q)
                status, ctype, out = a[:3]
                if status == "hang":
                    time.sleep(out)
                    return
                self.send_response(status)
                for k, v in (a[3] if len(a) > 3 else {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                try:
                    self.wfile.write(out)
                except OSError:
                    pass  # p1d stopped reading a reply that was too large

            def do_GET(self):
                self.answer("GET")

            def do_POST(self):
                self.answer("POST")

            def log_message(self, *a):
                pass

        self.srv = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def hits(self, path):
        return [r for r in self.requests if r[0] == path]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
