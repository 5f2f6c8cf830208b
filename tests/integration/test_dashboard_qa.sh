#!/usr/bin/env bash
# test_dashboard_qa.sh: the dashboard as a home owner meets it (tests/browser/dashboard_qa.test.mjs):
# costs without a price, several meters, no database, Dutch; run as test_dashboard.sh runs its own.
DASHBOARD_TEST=tests/browser/dashboard_qa.test.mjs exec bash "$(dirname "$0")/test_dashboard.sh"
