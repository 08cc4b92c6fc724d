"""``monitor check``: validate config and watchlists exactly as ``run`` does, then say what
will run (each notifier ON or OFF and why), and with ``--slack`` ask Slack itself.

Lint warnings never fail the check. A kind of warning with more than ``lint.SUMMARY_LIMIT``
of them (an imported 10,000-name list has hundreds of one-word names) is shown by its first
few, with positions, and one line counting the rest; ``--all-warnings`` prints every one.
Problems (errors) are always printed in full: each one stops ``run``."""

from __future__ import annotations

import argparse
import sys

from monitor.commands.common import EXIT_INVALID, EXIT_OK
from monitor.config import Config
from monitor.notify.build import build_notifiers, plan_notifiers
from monitor.preflight import preflight, summary


def cmd_check(args: argparse.Namespace) -> int:
    from monitor.lint import lint, summarise

    found = preflight(args.config, args.rules)
    for p in found.problems:
        print(p)
    warnings = lint(found.watchlists)
    for line in ([str(w) for w in warnings] if args.all_warnings else summarise(warnings)):
        print(line)
    terms = sum(len(w.terms) for w in found.watchlists)
    if found.problems:
        print(f"{len(found.problems)} problem(s); {len(found.watchlists)} watchlist(s) valid; "
              "`monitor run` would refuse to start", file=sys.stderr)
        return EXIT_INVALID
    print(f"ok: {len(found.watchlists)} watchlist(s), {terms} term(s), "
          f"{len(warnings)} warning(s)")
    if found.config is None:
        return EXIT_OK
    print("will run:")
    for line in summary(found.config, found.watchlists):
        print(line)
    if args.slack:
        return _check_slack(found.config)
    return EXIT_OK


def _check_slack(config: Config) -> int:
    """Ask Slack (at each notifier's ``api_url``) whether the token works and the bot can
    post in the channel: the mistakes that otherwise surface as dead alerts."""
    plans = {p.name: p for p in plan_notifiers(config)}
    slack = [n for n in config.notifiers if n.type == "slack"]
    if not slack:
        print("slack: no Slack notifier in config.yaml")
        return EXIT_INVALID
    notifiers, _ = build_notifiers(config)
    failed = False
    for n in slack:
        if not plans[n.name].on:
            print(f"{n.name}: OFF ({plans[n.name].why}); nothing to check")
            failed = True
            continue
        notifier = notifiers[n.name]
        for finding in notifier.verify():  # type: ignore[attr-defined]  # Slack notifiers only
            print(f"{n.name}: {'ok' if finding.ok else 'PROBLEM'}: {finding.text}")
            failed |= not finding.ok
        notifier.close()
    return EXIT_INVALID if failed else EXIT_OK
