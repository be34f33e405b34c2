"""tests/tap.py: run Python unittest modules and print TAP, one line a test.

Usage: python3 tests/tap.py tests/integration [pattern]
A failing test prints its assertion (expression and both values) as TAP
diagnostics, so tests/run.sh shows why without opening the log.
"""
import os
import sys
import unittest

PREFIX = os.environ.get("TAP_PREFIX", "")   # before each description (a second run's name)


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, extra=""):
        self.n += 1
        name = test.id().split(".", 1)[-1]
        desc = test.shortDescription() or name
        print(f"{'ok' if ok else 'not ok'} {self.n} - {PREFIX}{desc}{extra}", flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, f" # SKIP {reason}")

    def _fail(self, test, err):
        self._line(False, test)
        for line in self._exc_info_to_string(err, test).splitlines()[-25:]:
            print("#   " + line, flush=True)

    # The base class records the failure, so wasSuccessful() and the exit
    # status tell the truth, not only the TAP lines.
    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._fail(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        self._fail(test, err)


def main():
    start = sys.argv[1] if len(sys.argv) > 1 else "tests/integration"
    pattern = sys.argv[2] if len(sys.argv) > 2 else "test_*.py"
    suite = unittest.defaultTestLoader.discover(start, pattern=pattern, top_level_dir=start)
    result = TapResult()
    suite.run(result)
    print(f"1..{result.n}")
    sys.exit(0 if result.wasSuccessful() and result.n > 0 else 1)


if __name__ == "__main__":
    main()
