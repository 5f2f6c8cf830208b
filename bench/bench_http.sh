#!/usr/bin/env bash
# bench_http.sh: wrk against p1d's GET /api/v1/data and against nginx serving the same bytes as a
# static file, in the same run; prints "http_rps=N nginx_rps=N ratio=R" (target: ratio >= 0.5).
# Env: P1D (default build/p1d), DURATION (default 5s), THREADS (2), CONNECTIONS (50).
set -euo pipefail
cd "$(dirname "$0")/.."
P1D=${P1D:-build/p1d}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-50}

for tool in wrk nginx curl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "bench_http: $tool not installed (tools/setup.sh test)" >&2; exit 2; }
done
[ -x "$P1D" ] || { echo "bench_http: $P1D not built (make all)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/p1d-bench-http.XXXXXX)
p1d_pid=""
nginx_pid=""
cleanup() {
    [ -n "$p1d_pid" ] && kill "$p1d_pid" 2>/dev/null && wait "$p1d_pid" 2>/dev/null
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until url answers 200 (bounded).
wait_ok() {
    for _ in $(seq 1 200); do
        if curl -sf -o /dev/null "$1"; then return 0; fi
        sleep 0.05
    done
    echo "bench_http: $1 did not answer" >&2
    return 1
}

# Requests/sec of one wrk run.
rps() {
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$1" | awk '/^Requests\/sec:/ {printf "%d", $2}'
}

http_port=$(free_port)
"$P1D" --source x=sim --listen "127.0.0.1:$http_port" --log-level warn >"$tmp/p1d.log" 2>&1 &
p1d_pid=$!
wait_ok "http://127.0.0.1:$http_port/api/v1/data" || { cat "$tmp/p1d.log" >&2; exit 1; }

# The same bytes as a static file under the same path.
mkdir -p "$tmp/www/api/v1" "$tmp/nginx"
curl -sf "http://127.0.0.1:$http_port/api/v1/data" >"$tmp/www/api/v1/data"
nginx_port=$(free_port)
{
    # Workers of an nginx started by root run as nobody, who cannot read our 0700 temp dir.
    [ "$(id -u)" -eq 0 ] && echo "user root;"
    cat <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nginx_port;
        root $tmp/www;
        location / { default_type application/json; }
    }
}
EOF
} >"$tmp/nginx/nginx.conf"
nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" &
nginx_pid=$!
wait_ok "http://127.0.0.1:$nginx_port/api/v1/data" || { cat "$tmp/nginx/error.log" >&2; exit 1; }
if ! cmp -s "$tmp/www/api/v1/data" <(curl -sf "http://127.0.0.1:$nginx_port/api/v1/data"); then
    echo "bench_http: nginx does not serve the same bytes" >&2
    exit 1
fi

http_rps=$(rps "http://127.0.0.1:$http_port/api/v1/data")
nginx_rps=$(rps "http://127.0.0.1:$nginx_port/api/v1/data")
ratio=$(python3 -c "print(f'{$http_rps / max($nginx_rps, 1):.2f}')")
echo "http_rps=$http_rps nginx_rps=$nginx_rps ratio=$ratio"
