"""Storage faults: what the durable delivery writes cost, and what they save when the
filesystem under the daemon aborts (issue 8, RELIABILITY.md D09 and decision 2).

    sudo .venv/bin/python bench/faults.py [--runs 5] [--alerts 300] [--abort-alerts 200]
                                          [--dir /var/tmp] [--skip-abort]

1. Cost. In this process: a SQLite store (``durability: normal``) on a real disk under
   ``--dir``, ``--alerts`` alerts added (intake), then delivered by the outbox through the
   Slack Web API notifier to a SlackStub on 127.0.0.1, unpaced. Once with the durable
   writes (the default: intake, claim and finish commit with synchronous=FULL) and once
   without (``SqliteDb.durable_writes = False``: everything synchronous=NORMAL, as before
   issue 8), alternating, ``--runs`` times each; prints medians (and min–max) of alerts/s
   for intake and for delivery, and of claim+finish pairs/s with no network at all.

2. Filesystem abort (root, loop devices, mkfs.ext4, e2fsck). For each mode: a fresh ext4
   image mounted with ``errors=remount-ro`` holds the daemon's data directory; the daemon
   (``monitor run``) delivers a quarter of ``--abort-alerts`` alerts, the page cache is
   synced (what ran before is on disk, as in a daemon that ran for hours), the rest
   arrive at once and are delivered at 50/s; halfway through, the filesystem is aborted
   (``mount -o remount,abort``: what ext4 errors=remount-ro does after an I/O error),
   the daemon is watched for 3 s (``/readyz``, its log), then SIGKILLed (the OS is gone);
   the image is unmounted, checked with ``e2fsck -fy`` and mounted again, and ``monitor
   run --once`` delivers the rest. Prints lost and duplicated alerts (by SlackStub's alert
   ids), reconciles, and what the daemon said during the abort. Skipped, with the reason,
   when not root or a tool is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import DeliveryConfig
from monitor.models import Alert
from monitor.notify.outbox import Outbox
from monitor.notify.slack import SlackWebApiNotifier
from monitor.sqlite_util import SqliteDb
from monitor.store.sqlite import SqliteStore
from monitor.testing import make_item
from tests.harness.daemon import REPO, base_config, write_config
from tests.harness.feeds import Entry, rss
from tests.harness.feedstub import FeedStub
from tests.harness.probes import free_port, get_json
from tests.harness.slackstub import SlackStub

MODES = {"durable": True, "not durable": False}
TOOLS = ("losetup", "mkfs.ext4", "mount", "umount", "e2fsck", "truncate")
# The daemon with the durable writes switched off: what `durability: normal` was before.
NOT_DURABLE = ("import sys; from monitor.sqlite_util import SqliteDb; "
               "SqliteDb.durable_writes = False; from monitor.cli import main; "
               "sys.exit(main(sys.argv[1:]))")


def filesystem_of(path: Path) -> str:
    """``ext4 on /dev/vda`` for the mount holding ``path`` (tmpfs would make fsync free)."""
    best = ("", "?", "?")
    with open("/proc/mounts", encoding="utf-8") as fh:
        for line in fh:
            dev, mnt, fstype = line.split()[:3]
            if str(path.resolve()).startswith(mnt) and len(mnt) >= len(best[0]):
                best = (mnt, fstype, dev)
    return f"{best[1]} on {best[2]}"


def spread(values: list[float]) -> str:
    return (f"{statistics.median(values):8,.0f}/s  [median of {len(values)}, "
            f"{min(values):,.0f}–{max(values):,.0f}]")


# --- 1. the cost -----------------------------------------------------------------------------

def one_run(folder: Path, slack: SlackStub, n: int, durable: bool) -> tuple[float, float, float]:
    SqliteDb.durable_writes = durable
    store = SqliteStore(folder / "monitor.db")
    try:
        alerts = [Alert(id=f"a{i}", watchlist="bench", severity="high", item=make_item(i),
                        matches=(), created_at=time.time()) for i in range(n)]
        started = time.perf_counter()
        for a in alerts:
            store.add_alert(a, ["slack", "store-only"])
        intake = n / (time.perf_counter() - started)

        notifier = SlackWebApiNotifier("slack", slack.token or "", "#bench", slack.api_url)
        outbox = Outbox(store, {"slack": notifier}, DeliveryConfig(lease=60))
        started = time.perf_counter()
        sent = asyncio.run(outbox.run_due())
        deliver = sent / (time.perf_counter() - started)
        outbox.close()
        assert sent == n, f"delivered {sent} of {n}"

        started = time.perf_counter()  # the store's share alone: claim, then record sent
        for _ in range(n):
            (task,) = store.claim_deliveries(1, 60, ["store-only"])
            store.mark_sent(task, "ref")
        pairs = n / (time.perf_counter() - started)
        return intake, deliver, pairs
    finally:
        store.close()
        SqliteDb.durable_writes = True


def cost(root: Path, runs: int, n: int) -> None:
    print(f"1. cost of the durable writes: {n} alerts a run, data on {filesystem_of(root)} "
          f"({root})")
    results: dict[str, list[tuple[float, float, float]]] = {m: [] for m in MODES}
    with SlackStub() as slack:
        for r in range(runs):
            for mode, durable in MODES.items():
                with tempfile.TemporaryDirectory(dir=root) as folder:
                    results[mode].append(one_run(Path(folder), slack, n, durable))
                    slack.messages.clear()
                    slack.history.clear()
            print(f"   run {r + 1}/{runs} done", file=sys.stderr)
    for mode in MODES:
        intake, deliver, pairs = zip(*results[mode], strict=True)
        print(f"   {mode:12s} intake  {spread(list(intake))}")
        print(f"   {mode:12s} deliver {spread(list(deliver))}  (Web API -> SlackStub, unpaced)")
        print(f"   {mode:12s} store   {spread(list(pairs))}  (claim + sent, no network)")
    on, off = (statistics.median([d for _, d, _ in results[m]]) for m in MODES)
    print(f"   delivery with durable writes: {on / off:.0%} of the rate without "
          f"({1000 / on - 1000 / off:+.2f} ms an alert)")


# --- 2. the filesystem abort ------------------------------------------------------------------

def abort_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (loop device, mount, ext4 abort)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    probe = subprocess.run(["losetup", "-f"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"no free loop device: {probe.stderr.strip() or probe.stdout.strip()}"
    return None


def sh(*cmd: str | Path, ok: tuple[int, ...] = (0,)) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {done.returncode}: "
                           f"{done.stderr.strip()}")
    return done.stdout.strip()


def monitor_cmd(durable: bool, *args: str) -> list[str]:
    if durable:
        return [sys.executable, "-m", "monitor", *args]
    return [sys.executable, "-c", NOT_DURABLE, *args]


def abort_run(work: Path, n: int, durable: bool) -> dict[str, Any]:
    tag = "durable" if durable else "normal"
    image, mnt = work / f"{tag}.img", work / f"mnt-{tag}"
    sh("truncate", "-s", "256M", image)
    sh("mkfs.ext4", "-q", "-F", image)
    device = sh("losetup", "-f", "--show", image)
    mnt.mkdir()
    mounted = False
    try:
        sh("mount", "-o", "errors=remount-ro", device, mnt)
        mounted = True
        stories = [Entry(f"Convoy {i} reaches Ar-Rutbah", f"https://n.example/a{i}")
                   for i in range(n)]
        first = n // 4  # delivered and on disk before the abort: a daemon that ran a while
        with FeedStub() as feeds, SlackStub() as slack:
            port = free_port()
            notifier = {"name": "slack", "type": "slack", "token": "${SLACK_BOT_TOKEN}",
                        "channel": "#alerts", "api_url": "${SLACK_API_URL}",
                        "rate_per_second": 50, "burst": 5}
            url = feeds.serve("/f.xml", rss(stories[:first]))
            config = base_config(mnt, [{"name": "f", "url": url, "interval": "1s", "jitter": 0,
                                        "max_items": n}], [notifier])
            config["delivery"]["lease"] = "1s"
            config["server"] = {"port": port}
            path = write_config(work / f"config-{tag}.yaml", config)
            env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
            env |= {"SLACK_BOT_TOKEN": slack.token or "", "SLACK_API_URL": slack.api_url}
            log = work / f"daemon-{tag}.log"
            with log.open("w") as err:
                proc = subprocess.Popen(monitor_cmd(durable, "run", "--config", str(path)),
                                        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
                deadline = time.monotonic() + 60
                while len(slack.posts()) < first and time.monotonic() < deadline:
                    time.sleep(0.05)
                os.sync()  # what ran before is on disk, as after hours of running
                time.sleep(1)
                feeds.serve("/f.xml", rss(stories))  # then a burst of news
                while len(slack.posts()) < (first + n) // 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                posted_at_abort = len(slack.posts())
                sh("mount", "-o", "remount,abort", mnt)
                ready: Counter[int] = Counter()
                watch = time.monotonic() + 3
                while time.monotonic() < watch:
                    with contextlib.suppress(OSError):
                        ready[get_json(f"http://127.0.0.1:{port}/readyz")[0]] += 1
                    time.sleep(0.2)
                alive = proc.poll() is None
                proc.send_signal(signal.SIGKILL)  # the OS is gone: no cleanup of any kind
                proc.wait()
            said = log.read_text(encoding="utf-8")
            posted_before_restart = len(slack.posts())

            sh("umount", mnt)
            mounted = False
            sh("e2fsck", "-fy", image, ok=(0, 1))  # 1: errors corrected
            sh("mount", "-o", "errors=remount-ro", device, mnt)
            mounted = True
            restart = subprocess.run(monitor_cmd(durable, "run", "--once", "--config", str(path)),
                                     cwd=REPO, env=env, capture_output=True, text=True,
                                     timeout=180)
            ids = Counter(slack.alert_ids())
        return {
            "posted_at_abort": posted_at_abort,
            "posted_before_restart": posted_before_restart,
            "alive": alive,
            "readyz": dict(ready),
            "storage_failing": said.count("storage_failing"),
            "tracebacks": said.count("Traceback"),
            "restart_code": restart.returncode,
            "lost": n - len(ids),
            "duplicated": sum(ids.values()) - len(ids),
            "reconciled": restart.stderr.count("alert_reconciled"),
            "restart_said": "" if restart.returncode == 0 else restart.stderr.strip()[-600:],
        }
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], capture_output=True)
        subprocess.run(["losetup", "-d", device], capture_output=True)
        image.unlink(missing_ok=True)


def abort(root: Path, n: int, runs: int) -> None:
    print(f"2. filesystem abort (ext4 errors=remount-ro on a loop device, {n} alerts, "
          f"aborted halfway, SIGKILL, e2fsck, restart), {runs} runs a mode")
    reason = abort_unavailable()
    if reason:
        print(f"   skipped: {reason}")
        return
    totals: dict[str, Counter[str]] = {mode: Counter() for mode in MODES}
    for _ in range(runs):
        for mode, durable in MODES.items():
            with tempfile.TemporaryDirectory(dir=root) as work:
                r = abort_run(Path(work), n, durable)
            totals[mode].update(lost=r["lost"], duplicated=r["duplicated"],
                                reconciled=r["reconciled"])
            report(mode, r)
    for mode, t in totals.items():
        print(f"   {mode:12s} in all {runs} runs: lost {t['lost']}, duplicated "
              f"{t['duplicated']}, reconciled {t['reconciled']}")


def report(mode: str, r: dict[str, Any]) -> None:
    print(f"   {mode:12s} lost {r['lost']}  duplicated {r['duplicated']}  "
          f"reconciled {r['reconciled']}  (posted {r['posted_at_abort']} at the abort, "
          f"{r['posted_before_restart']} before the restart; restart exit "
          f"{r['restart_code']})")
    print(f"   {'':12s} during the abort: process alive={r['alive']}, /readyz answers "
          f"{r['readyz']}, storage_failing lines {r['storage_failing']}, "
          f"tracebacks {r['tracebacks']}")
    if r["restart_said"]:
        print(f"   {'':12s} the restart said: {r['restart_said']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--abort-alerts", type=int, default=200)
    parser.add_argument("--abort-runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"),
                        help="where the databases go: a real disk, not tmpfs")
    parser.add_argument("--skip-abort", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="monitor-faults-", dir=args.dir))
    try:
        if not args.skip_cost:
            cost(root, args.runs, args.alerts)
        if not args.skip_abort:
            abort(root, args.abort_alerts, args.abort_runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
