"""The scaled-out queue: Kafka topics, one consumer group per role (kafka-python 3.0.x).

Topics, each created if missing with ``queue.partitions`` partitions:

* ``<prefix>.items`` and ``<prefix>.alerts``: keyed by the dedupe key (an item's key, an
  alert's id), so one story stays in one partition, in order;
* ``<prefix>.items.retry`` and ``<prefix>.alerts.retry``: messages whose processing
  failed, with their attempt count, not-before time and error in headers; read by the
  group of their topic, beside the topic itself (so its lag counts them);
* ``<prefix>.dead``: dead letters, with their topic and reason in headers.

Groups are ``<prefix>-match`` (items) and ``<prefix>-notify`` (alerts): named for the
roles, so every process of a role shares its group and splits the partitions. Offsets are
committed only after the stage's result is stored or produced (``kafka_consumer``).

The producer is shared (kafka-python's is thread-safe): ``acks=all``, retries until
``queue.timeout``, and idempotence where the broker supports it (kafka-python's default,
switched off with a warning on a broker older than 0.11). A broker that cannot be reached
makes a publish raise ``StoreError`` (a ``ServiceUnavailable``) within the timeout, said
once in the log; a poll then records nothing and keeps its cursor, and health is
``failing`` until the broker answers again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

from monitor import failpoints, metrics
from monitor.errors import StoreError
from monitor.queue.base import GROUPS, Queue, Subscription
from monitor.queue.kafka_admin import KafkaAdminView
from monitor.queue.kafka_consumer import KafkaSubscription
from monitor.queue.kafka_records import (
    KAFKA_ERRORS,
    Headers,
    dead_headers,
    kafka,
    retry_headers,
)
from monitor.storefault import Fault

log = logging.getLogger("monitor.queue")

#: Records handed to the producer at once by one publish (see ``KafkaQueue.produce``).
PRODUCE_CHUNK = 100

Record = tuple[str, str, bytes, Headers]  # (Kafka topic, key, value, headers)


class KafkaQueue(Queue):
    """``servers``: ``host:port[,host:port]``. ``timeout``: how long a call waits for the
    broker before it counts as unreachable. ``session_timeout``: how long a consumer that
    died keeps its partitions (and, on Tansu, about twice what a group join waits)."""

    def __init__(self, servers: str, *, prefix: str = "monitor", partitions: int = 3,
                 timeout: float = 10.0, session_timeout: float = 10.0) -> None:
        self.servers = [s.strip() for s in servers.split(",") if s.strip()]
        self.prefix, self.partitions = prefix, partitions
        self.timeout, self.session_timeout = timeout, session_timeout
        self.fault = Fault(f"Kafka {','.join(self.servers)}")
        self._lock = threading.Lock()
        self._producer: Any = None
        self._admin: KafkaAdminView | None = None

    # --- names -------------------------------------------------------------------------
    def topic_name(self, topic: str) -> str:
        return f"{self.prefix}.{topic}"

    def retry_topic(self, topic: str) -> str:
        return self.topic_name(f"{topic}.retry")

    @property
    def dead_topic(self) -> str:
        return self.topic_name("dead")

    def group_id(self, group: str) -> str:
        return f"{self.prefix}-{group}"

    def all_topics(self) -> list[str]:
        return [*(self.topic_name(t) for t in GROUPS), *(self.retry_topic(t) for t in GROUPS),
                self.dead_topic]

    def client_options(self) -> dict[str, Any]:
        ms = int(self.timeout * 1000)
        # bootstrap_timeout_ms: without it a client's constructor blocks 30 s on a dead
        # broker, whatever the other timeouts say.
        return {"bootstrap_servers": self.servers, "request_timeout_ms": ms,
                "bootstrap_timeout_ms": ms}

    # --- publishing --------------------------------------------------------------------
    def producer(self) -> Any:
        with self._lock:
            if self._producer is None:
                ms = int(self.timeout * 1000)
                try:
                    self._producer = kafka.KafkaProducer(
                        **self.client_options(), client_id=f"{self.prefix}-producer",
                        acks="all", linger_ms=0, max_block_ms=ms, delivery_timeout_ms=ms + 1000,
                        # One record per batch: the end offset a broker reports (ListOffsets)
                        # is then exact on Tansu too, which reports the last batch's base
                        # offset + 1, and lag is what `run --once` drains by. Our rates (a
                        # poll's new items, an item's alerts) are far below where batching
                        # pays (bench: 1,700 records/s on loopback even so).
                        batch_size=1)
                except KAFKA_ERRORS as exc:
                    raise self.fault.failed(exc, write=True) from exc
            return self._producer

    def publish_many(self, topic: str, messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
        records: list[Record] = [(self.topic_name(topic), key, json.dumps(payload).encode(),
                                  []) for key, payload in messages]
        if records:
            self.produce(records)
        return len(records)

    def produce(self, records: list[Record]) -> None:
        """Send the records and wait until the broker has every one (acks=all).

        Raises:
            StoreError: the broker did not take them all within ``timeout``.
        """
        try:
            failpoints.hit("queue_write")
            producer = self.producer()
            # In chunks: a record expires ``timeout`` after it is handed to the producer,
            # so 500 new items sent at once on a loaded host expired while they waited
            # their turn (one record per batch, below). A chunk is sent only once the one
            # before it is acknowledged: ``timeout`` bounds a stall, not the whole publish.
            for i in range(0, len(records), PRODUCE_CHUNK):
                futures = [producer.send(name, key=key.encode(), value=value, headers=headers)
                           for name, key, value, headers in records[i:i + PRODUCE_CHUNK]]
                producer.flush(timeout=self.timeout + 2)
                for future in futures:
                    future.get(timeout=0)
        except StoreError:
            self._failed_publish()
            raise
        except Exception as exc:  # kafka's errors, or a failpoint's: the write failed
            self._failed_publish()
            raise self.fault.failed(exc, write=True) from exc
        self.fault.succeeded(wrote=True)

    def _failed_publish(self) -> None:
        """Count it, and drop the producer: the next publish makes a new one.

        kafka-python 3.0's producer does not recover from a partition (a link that
        accepts and never answers, where a broker that is down refuses): after one
        expired batch every later publish timed out, for good, though the broker was
        reachable again (tests/test_kafka_partition.py). A new producer connects afresh
        and gets a new producer id; the records the old one still held are dropped with
        it, and the caller, told the publish failed, publishes them again."""
        metrics.QUEUE_PUBLISH_ERRORS.labels("kafka").inc()
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=0)
            except Exception as exc:  # what it held is dropped either way
                log.debug("kafka_producer_close_failed error=%r", str(exc))

    def retry_later(self, topic: str, key: str, value: bytes, attempts: int, delay: float,
                    error: str) -> None:
        self.produce([(self.retry_topic(topic), key, value,
                       retry_headers(topic, attempts, delay, error))])

    def dead_letter(self, topic: str, key: str, value: bytes, attempts: int, error: str) -> None:
        self.produce([(self.dead_topic, key, value, dead_headers(topic, attempts, error))])

    # --- topics, subscriptions, admin ----------------------------------------------------
    def ensure_topics(self) -> None:
        """Create the topics that are missing (another process may race us: fine).

        Raises:
            ServiceUnavailable: the broker cannot be reached.
        """
        self.admin.ensure_topics(self.all_topics(), self.partitions)

    def subscribe(self, topic: str, group: str | None = None) -> Subscription:
        return KafkaSubscription(self, topic, self.group_id(group or GROUPS[topic]))

    @property
    def admin(self) -> KafkaAdminView:
        with self._lock:
            if self._admin is None:
                self._admin = KafkaAdminView(self)
            return self._admin

    def close(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
            admin, self._admin = self._admin, None
        if producer is not None:
            producer.close(timeout=self.timeout)
        if admin is not None:
            admin.close()
