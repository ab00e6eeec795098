"""Print one closing line for a test run made of several pytest invocations.

Reads the JUnit XML files pytest wrote and prints "Total: N passed, N failed"
(with skipped when any), so the whole suite has one summary.
"""

from __future__ import annotations

import sys
from xml.etree import ElementTree


def main(paths: list[str]) -> None:
    tests = failures = errors = skipped = 0
    for path in paths:
        for suite in ElementTree.parse(path).getroot().iter("testsuite"):  # noqa: S314 - our own pytest output
            tests += int(suite.get("tests", 0))
            failures += int(suite.get("failures", 0))
            errors += int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    failed = failures + errors
    passed = tests - failed - skipped
    line = f"Total: {passed} passed, {failed} failed"
    print(line + (f", {skipped} skipped" if skipped else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
