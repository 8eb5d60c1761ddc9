"""``python -m tasks.cluster.until SECONDS -- ARGV...``: run ARGV until it succeeds.

For waits no single kubectl call can express (an API that must *accept* a dry-run
object once its webhook and CA are ready): ARGV runs again every few seconds, with the
same stdin, until it exits 0 or SECONDS have passed; then its last stderr is printed and
its exit code returned. Nothing is shown of stdin.
"""

from __future__ import annotations

import subprocess
import sys
import time

PAUSE = 3.0


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--" or not argv[1].isdigit():
        print("usage: python -m tasks.cluster.until SECONDS -- ARGV...", file=sys.stderr)
        return 2
    deadline = time.monotonic() + int(argv[1])
    stdin = sys.stdin.buffer.read()
    while True:
        proc = subprocess.run(argv[3:], input=stdin, capture_output=True, check=False)
        if proc.returncode == 0:
            sys.stdout.buffer.write(proc.stdout)
            return 0
        if time.monotonic() + PAUSE > deadline:
            sys.stderr.buffer.write(proc.stderr)
            return proc.returncode
        time.sleep(PAUSE)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
