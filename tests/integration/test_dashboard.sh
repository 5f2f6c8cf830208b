#!/usr/bin/env bash
# test_dashboard.sh: the dashboard in a real browser (tests/browser/dashboard.test.mjs, or the
# script in $DASHBOARD_TEST): Chromium headless through playwright-core against build/p1d on
# 127.0.0.1; screenshots in build/screenshots/.
set -u
cd "$(dirname "$0")/../.." || exit 1
P1D=${P1D:-build/p1d}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
SCRIPT=${DASHBOARD_TEST:-tests/browser/dashboard.test.mjs}
missing=""
[ -x "$P1D" ] || missing="$missing $P1D (make all)"
command -v node >/dev/null 2>&1 || missing="$missing node"
[ -x "$CHROMIUM" ] || missing="$missing $CHROMIUM (tools/setup.sh test)"
[ -d web/node_modules/playwright-core ] || missing="$missing web/node_modules/playwright-core (tools/setup.sh test)"
if [ -n "$missing" ]; then
    echo "SKIP: dashboard browser test $SCRIPT: missing$missing"
    echo "0 passed, 0 failed"
    exit 0
fi
# the script ends itself at its own deadline (DEADLINE_MS); this is the last resort
P1D=$P1D CHROMIUM=$CHROMIUM timeout 420 node "$SCRIPT"
