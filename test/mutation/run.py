#!/usr/bin/env python3
"""The mutation check: each mutation of test/mutation/mutations.txt breaks one
claim of the product on purpose, and the tests it names must fail.

The tree is mirrored into BUILD_DIR/src (only files whose content changed are
rewritten, so the Release + ASan build in BUILD_DIR/build stays incremental);
each mutation is applied there alone, the binaries its tests run are rebuilt,
its tests run (ctest -R, --no-tests=error) and every one of them must fail;
then the file is restored. The tests named by all mutations first run once
unmutated: they must pass, or no kill would mean anything. The original text
of a mutation must occur exactly once in its file; when it does not (the code
moved on), the mutation fails loudly rather than being skipped.

Prints one line per mutation and "N passed, N failed"; exits 1 when any
mutation survived, no longer applies or does not build, 2 on a usage or setup
error. Logs: BUILD_DIR/logs/<name>.log."""

import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIST = os.path.join(ROOT, "test", "mutation", "mutations.txt")
KEYS = ("file", "from", "to", "claim", "tests")
ALWAYS_BUILT = ("tokengate", "tg-mint")  # what the integration and CLI tests run
TEST_TIMEOUT = 180


class Mutation:
    def __init__(self, name, line):
        self.name = name
        self.line = line  # where it starts in the list, for messages
        self.fields = {}
        self.original = []
        self.replacement = []

    @property
    def file(self):
        return self.fields["file"]

    @property
    def claim(self):
        return self.fields["claim"]

    @property
    def tests(self):
        return self.fields["tests"]

    def texts(self):
        return "\n".join(self.original), "\n".join(self.replacement)


def parse(path):
    """Reads the list: blocks starting with [name]; `key value` lines, and
    `from |text` / `to |text` lines whose text is everything after the bar
    (several lines join with newlines; a `to` with no line deletes)."""
    mutations, current, errors = [], None, []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            header = re.fullmatch(r"\[([a-z0-9][a-z0-9-]*)\]", line.strip())
            if header:
                current = Mutation(header.group(1), number)
                mutations.append(current)
                continue
            exact = re.match(r"(from|to)\s*\|", line)
            if current is None:
                errors.append(f"{path}:{number}: text before the first [name]")
            elif exact:
                (current.original if exact.group(1) == "from" else current.replacement).append(
                    line[exact.end():])
                current.fields.setdefault(exact.group(1), True)
            else:
                key, _, value = line.partition(" ")
                if key not in KEYS or key in ("from", "to") or not value.strip():
                    errors.append(f"{path}:{number}: expected `file|claim|tests VALUE` or `from|to |TEXT`")
                else:
                    current.fields[key] = value.strip()
    names = set()
    for m in mutations:
        missing = [k for k in KEYS if k not in m.fields]
        if missing:
            errors.append(f"{path}:{m.line}: [{m.name}] lacks {', '.join(missing)}")
        if m.name in names:
            errors.append(f"{path}:{m.line}: [{m.name}] is listed twice")
        names.add(m.name)
    return mutations, errors


def run(cmd, log=None, **kw):
    """Runs |cmd|; output goes to the open file |log| or is captured."""
    if log is None:
        return subprocess.run(cmd, capture_output=True, text=True, **kw)
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, **kw)


def tree_files():
    """The tree's files: what git tracks or would track; without git, every
    file outside build folders."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True)
        files = out.stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        files = []
        for folder, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if not (d.startswith("build") or d in (".git", "__pycache__"))]
            files += [os.path.relpath(os.path.join(folder, n), ROOT) for n in names]
    return [p for p in files if p and os.path.isfile(os.path.join(ROOT, p))]


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write_bytes(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def mirror(src):
    """Makes |src| hold the tree as it is, rewriting only what differs."""
    wanted = set(tree_files())
    for rel in wanted:
        data = read_bytes(os.path.join(ROOT, rel))
        if read_bytes(os.path.join(src, rel)) != data:
            write_bytes(os.path.join(src, rel), data)
            os.chmod(os.path.join(src, rel), os.stat(os.path.join(ROOT, rel)).st_mode & 0o777)
    for folder, _, files in os.walk(src):
        for name in files:
            rel = os.path.relpath(os.path.join(folder, name), src)
            if rel not in wanted:
                os.remove(os.path.join(folder, name))


def tests_matching(build, regex):
    """The ctest entries matching |regex|, as ctest --show-only=json-v1 has them."""
    out = run(["ctest", "--test-dir", build, "-R", regex, "--show-only=json-v1"])
    return json.loads(out.stdout).get("tests", []) if out.returncode == 0 else []


def targets_for(build, regex):
    """The build targets the tests matching |regex| run: their executables
    that the build makes, and always tokengate and tg-mint."""
    names = set(ALWAYS_BUILT)
    for test in tests_matching(build, regex):
        command = test.get("command") or []
        if command and os.path.abspath(command[0]).startswith(os.path.abspath(build) + os.sep):
            names.add(os.path.basename(command[0]))
    return sorted(names)


def failed_tests(build):
    """The tests the last ctest run in |build| failed (ctest's own list)."""
    path = os.path.join(build, "Testing", "Temporary", "LastTestsFailed.log")
    try:
        with open(path, encoding="utf-8") as f:
            return {line.strip().split(":", 1)[1] for line in f if ":" in line}
    except FileNotFoundError:
        return set()


def run_tests(build, regex, jobs, log):
    """Runs the tests matching |regex|; returns the names of those that failed."""
    path = os.path.join(build, "Testing", "Temporary", "LastTestsFailed.log")
    if os.path.exists(path):
        os.remove(path)
    rc = run(["ctest", "--test-dir", build, "-R", regex, "--no-tests=error", "--timeout", str(TEST_TIMEOUT),
              "-j", jobs, "--output-on-failure"], log).returncode
    failed = failed_tests(build)
    if rc != 0 and not failed:
        failed = {"(ctest itself)"}
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=os.environ.get("MUTATION_BUILD_DIR",
                                                              os.path.join(ROOT, "build-mutation")))
    parser.add_argument("--mutations", default=LIST, metavar="FILE", help="the list (default: %(default)s)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="print the mutations and exit")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    mutations, errors = parse(args.mutations)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 2
    if args.only:
        unknown = set(args.only) - {m.name for m in mutations}
        if unknown:
            print(f"unknown mutation(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        mutations = [m for m in mutations if m.name in args.only]
    if args.list:
        for m in mutations:
            print(f"{m.name}: {m.file}: {m.claim} [{m.tests}]")
        return 0

    work = os.path.abspath(args.build_dir)
    src, build, logs = (os.path.join(work, d) for d in ("src", "build", "logs"))
    os.makedirs(logs, exist_ok=True)
    start = time.monotonic()
    mirror(src)
    jobs = str(max(1, args.jobs))
    with open(os.path.join(logs, "baseline.log"), "w", encoding="utf-8") as log:
        if run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DTOKENGATE_SANITIZE=ON",
                "-DTOKENGATE_WERROR=OFF"], log).returncode != 0 or \
                run(["cmake", "--build", build, "-j", jobs], log).returncode != 0:
            print(f"mutation: the unmutated tree does not build (see {log.name})", file=sys.stderr)
            return 2
        # One regex of names: CMake's regular expressions allow few groups.
        names = sorted({t["name"] for m in mutations for t in tests_matching(build, m.tests)})
        every = "^(" + "|".join(re.escape(n) for n in names) + ")$"
        broken = run_tests(build, every, jobs, log)
        if broken:
            print(f"mutation: {', '.join(sorted(broken))} fail without any mutation (see {log.name})",
                  file=sys.stderr)
            return 2
    print(f"mutation: baseline built and passing in {time.monotonic() - start:.0f}s", flush=True)

    passed = failed = 0
    for m in mutations:
        t0 = time.monotonic()
        path = os.path.join(src, m.file)
        before = read_bytes(path)
        original, replacement = m.texts()
        count = before.decode("utf-8").count(original) if before is not None else 0
        if count != 1:
            failed += 1
            where = "the file does not exist" if before is None else f"the original text occurs {count} times"
            print(f"FAIL {m.name}: no longer applies to {m.file}: {where} (update test/mutation/mutations.txt)",
                  flush=True)
            continue
        expected = {t["name"] for t in tests_matching(build, m.tests)}
        write_bytes(path, before.decode("utf-8").replace(original, replacement).encode("utf-8"))
        try:
            with open(os.path.join(logs, f"{m.name}.log"), "w", encoding="utf-8") as log:
                built = run(["cmake", "--build", build, "-j", jobs, "--target", *targets_for(build, m.tests)],
                            log).returncode == 0
                caught = run_tests(build, m.tests, jobs, log) if built else set()
        finally:
            write_bytes(path, before)
        took = time.monotonic() - t0
        # Every test the mutation names must catch it: a suite that lost its
        # teeth shows up even while another still bites.
        missed = expected - caught
        if not built:
            failed += 1
            print(f"FAIL {m.name}: the mutated tree does not build (see logs/{m.name}.log)", flush=True)
        elif not expected:
            failed += 1
            print(f"FAIL {m.name}: no test matches {m.tests}", flush=True)
        elif missed:
            failed += 1
            print(f"FAIL {m.name}: SURVIVED {', '.join(sorted(missed))}: {m.claim} ({m.file})", flush=True)
        else:
            passed += 1
            print(f"ok   {m.name}: killed by {', '.join(sorted(expected))} ({took:.0f}s)", flush=True)
    print(f"{passed} passed, {failed} failed ({time.monotonic() - start:.0f}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
