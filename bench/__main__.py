"""Every bench in turn: append, ingest, read, standby, subscribe, webhooks (`make bench`).

Run: python -m bench [--seconds N] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import append, ingest, read, standby, subscribe, webhooks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--quick", action="store_true", help="3 s per measurement")
    args = parser.parse_args(argv)
    # Only the options every bench takes are passed on; each keeps its own defaults.
    shared = ["--seconds", str(args.seconds), *(["--quick"] if args.quick else [])]
    # Run sequentially, never together: they would share the 2 cores and skew each other.
    for index, run in enumerate((append.main, ingest.main, read.main, standby.main)):
        if index:
            print()
        if status := run(shared):
            return status
    # subscribe and webhooks take no --seconds: their length is set by what they send.
    for run in (subscribe.main, webhooks.main):
        print()
        if status := run(["--quick"] if args.quick else []):
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
