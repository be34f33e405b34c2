#!/usr/bin/env bash
# A suite for tests/suites/runner.sh: one pass, two skips (one listed in
# tests/runner/skips.allow, one not).
echo "ok 1 - a test that passes"
echo "ok 2 - a test skipped for a listed reason # SKIP the listed reason, on /some/path"
echo "ok 3 - a test skipped for another reason # skip nobody wrote this down"
echo "1..3"
