"""Queues between stages, chosen by ``queue.backend``: ``sqlite`` (one file, embedded) or
``kafka`` (topics shared by any number of processes). The seam is ``monitor.queue.base``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monitor.errors import ServiceUnavailable
from monitor.install import install_hint
from monitor.queue.base import Queue

if TYPE_CHECKING:
    from monitor.config import Config


def open_queue(config: Config, *, create: bool = True) -> Queue:
    """Open the configured queue. ``create``: make what is missing (the SQLite file, the
    Kafka topics); read-only commands pass False. The daemon's SQLite queue is opened by
    ``monitor.datadir.open_paired`` instead, which checks it belongs to its store.

    Raises:
        ServiceUnavailable: the queue cannot be opened or the broker reached.
    """
    q = config.queue
    if q.backend == "kafka":
        try:
            from monitor.queue.kafka import KafkaQueue
        except ImportError as exc:  # kafka-python is the `kafka` extra
            raise ServiceUnavailable("queue.backend: kafka needs kafka-python; run: "
                                     f"{install_hint('kafka')}") from exc
        queue = KafkaQueue(q.bootstrap_servers or "", prefix=q.topic_prefix,
                           partitions=q.partitions, timeout=q.timeout,
                           session_timeout=q.session_timeout)
        if create:
            try:
                queue.ensure_topics()
            except BaseException:
                queue.close()
                raise
        return queue
    from monitor.queue.sqlite import SqliteQueue

    return SqliteQueue(config.resolve(q.path), durability=config.store.durability,
                       lease=config.delivery.lease)
