#!/usr/bin/env python3
"""azure_stub.py: a minimal, fast stand-in for the Table service's $batch endpoint (no storage):
answers POST /Tables with 201 and every $batch with a well-formed 202 batch response confirming
each operation, so bench_azure.sh can measure p1d's own side of a drain. Usage: azure_stub.py PORT

Each reply goes out in one write with Nagle off (TCP_NODELAY): headers and body written
separately with Nagle on stall one reply in four by the peer's 40 ms delayed ACK, which would
measure the stub, not p1d."""
import http.server
import sys


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0].endswith("/Tables"):
            out, status, ctype = b"", b"201 Created", b"application/json"
        else:
            ops = body.count(b"Content-Transfer-Encoding: binary")  # one per operation
            parts = [b"--batchresponse_1\r\nContent-Type: multipart/mixed; "
                     b"boundary=changesetresponse_2\r\n\r\n"]
            parts += [b"--changesetresponse_2\r\nContent-Type: application/http\r\n"
                      b"Content-Transfer-Encoding: binary\r\n\r\n"
                      b"HTTP/1.1 204 No Content\r\n\r\n"] * ops
            parts.append(b"--changesetresponse_2--\r\n--batchresponse_1--\r\n")
            out, status = b"".join(parts), b"202 Accepted"
            ctype = b"multipart/mixed; boundary=batchresponse_1"
        self.wfile.write(b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" %
                         (status, ctype, len(out), out))

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
srv.daemon_threads = True
srv.serve_forever()
