"""Runs the unittest module named on the command line, from the current
folder, as `python3 -m unittest -v MODULE` does, but fails when no test ran
or every test was skipped: a renamed module, class or filter must never pass
as green (Python 3.11's unittest exits 0 after "Ran 0 tests")."""

import os
import sys
import unittest


def main(argv):
    if len(argv) != 2:
        print(f"usage: {argv[0]} MODULE", file=sys.stderr)
        return 2
    sys.path.insert(0, os.getcwd())
    suite = unittest.defaultTestLoader.loadTestsFromName(argv[1])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if result.testsRun == 0 or len(result.skipped) == result.testsRun:
        print(f"{argv[1]}: no test ran ({result.testsRun} found, {len(result.skipped)} skipped)", file=sys.stderr)
        return 1
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
