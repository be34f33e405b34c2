#!/usr/bin/env bash
# tests/suites/browser.sh: the dashboard in Debian's headless chromium against
# the real codensm-server (tests/browser/test_dashboard.py), printed as TAP.
# Needs only python3 and chromium (.ci/deps): the DevTools protocol is spoken
# over a pipe by tests/browser/cdp.py, so there is nothing to fetch from npm.
set -u
cd "$(dirname "$0")/../.."
build=${CODENSM_BUILD:-build}
server=$build/bin/codensm-server
if [ ! -x "$server" ]; then
	echo "not ok 1 - the browser test needs $server (run make first)"
	echo "1..1"
	exit 1
fi
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
	echo "not ok 1 - the browser test needs chromium (bash .ci/deps installs it)"
	echo "1..1"
	exit 1
fi
exec python3 tests/tap.py tests/browser 'test_*.py'
