#!/usr/bin/env python3
"""azure_stub.py: a minimal, fast stand-in for the Table service's $batch endpoint (no storage):
answers POST /Tables with 201 and every $batch with a well-formed 202 batch response confirming
each operation, so bench_azure.sh can measure p1d's own side of a drain. Usage: azure_stub.py PORT"""
import http.server
import sys


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.split("?")[0].endswith("/Tables"):
            out, status, ctype = b"", 201, "application/json"
        else:
            ops = body.count(b"\r\nPUT ")
            parts = [b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=changesetresponse_2\r\n\r\n"]
            parts += [b"--changesetresponse_2\r\nContent-Type: application/http\r\n"
                      b"Content-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"] * ops
            parts.append(b"--changesetresponse_2--\r\n--batchresponse_1--\r\n")
            out, status = b"".join(parts), 202
            ctype = "multipart/mixed; boundary=batchresponse_1"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
srv.daemon_threads = True
srv.serve_forever()
