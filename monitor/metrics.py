"""Prometheus metrics: every promise in RELIABILITY.md has a number an operator can alert on.

A private registry per process (not the global one), so tests and embedded use never
collide; ``*_created`` series are switched off, as they only add noise.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

POLLS = Counter("monitor_polls_total",
                "Polls by source and outcome (ok, failed; skipped: another poller held "
                "the source's lease).",
                ["source", "outcome"], registry=REGISTRY)
FETCH_REJECTED = Counter("monitor_fetch_rejected_total", "Fetches refused by the fetch layer.",
                         ["source", "reason"], registry=REGISTRY)
ITEMS_NEW = Counter("monitor_items_new_total", "Items queued for matching (not seen before).",
                    ["source"], registry=REGISTRY)
ALERTS = Counter("monitor_alerts_total", "Alerts raised, by watchlist.", ["watchlist"],
                 registry=REGISTRY)
DEDUP_HITS = Counter("monitor_dedup_hits_total", "Alerts already stored (same story).",
                     registry=REGISTRY)
DELIVERIES = Counter("monitor_deliveries_total",
                     "Delivery attempts by destination and outcome (sent, retry, dead, "
                     "reconciled).", ["destination", "outcome"], registry=REGISTRY)
POSSIBLE_DUPLICATES = Counter("monitor_alerts_possible_duplicate_total",
                              "Re-sends after an ambiguous attempt that could not be checked.",
                              ["destination"], registry=REGISTRY)
QUEUE_PUBLISH_ERRORS = Counter("monitor_queue_publish_errors_total",
                               "Publishes the queue did not take (broker unreachable, disk "
                               "full); the poll or stage that published keeps its work and "
                               "retries.", ["backend"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("monitor_queue_depth", "Messages waiting in a queue.", ["queue"],
                    registry=REGISTRY)
DELIVERY_ROWS = Gauge("monitor_delivery_rows", "(alert, destination) rows by state.",
                      ["state"], registry=REGISTRY)
CONFIG_RELOAD_FAILURES = Counter("monitor_config_reload_failures_total",
                                 "Watchlist reloads rejected.", registry=REGISTRY)
JOB_MAX_INSTANCES = Counter("monitor_job_max_instances_total",
                            "Polls skipped because the previous one still ran.", ["source"],
                            registry=REGISTRY)
