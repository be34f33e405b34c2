#!/usr/bin/env bash
# A suite for tests/suites/runner.sh: one pass and one skip its list allows.
echo "ok 1 - a test that passes"
echo "ok 2 - a test skipped for a listed reason # SKIP the listed reason, on /other/path"
echo "1..2"
