#!/usr/bin/env bash
# bench_web.sh: the dashboard's budgets (bench/bench_web.mjs): gzip bytes, first render,
# telegram-to-screen latency, tab heap over a long run. Extra arguments go to the .mjs.
set -u
cd "$(dirname "$0")/.." || exit 1
if [ ! -x "${P1D:-build/p1d}" ] || [ ! -d web/node_modules/playwright-core ] || [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    echo "bench_web: SKIP: needs build/p1d, web/node_modules (tools/setup.sh test) and chromium"
    exit 0
fi
exec node bench/bench_web.mjs "$@"
