"""``python -m monitor.engine.build``: compile the matching engine (``native``).

Exit 0 when built, 1 when it could not be (no C compiler, no mypy): the daemon then runs
the pure-Python engine, which matches the same; ``status`` prints which one is in use."""

from __future__ import annotations

import sys

from monitor.engine import native


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in ([], ["build"], ["build", "--force"]):
        try:
            where = native.build(force="--force" in args)
        except (native.BuildError, OSError) as exc:
            print(f"monitor: the compiled engine was not built: {exc}\nmonitor: the "
                  "pure-Python engine is used: the same matches, slower", file=sys.stderr)
            return 1
        print(f"monitor: compiled engine built in {where}")
        return 0
    if args == ["status"]:
        print(native.active())
        return 0
    print("usage: python -m monitor.engine.build [build [--force]|status]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
