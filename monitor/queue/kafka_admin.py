"""What operators ask of the Kafka queue: lag, dead letters, reachability; and topic setup.

Called from the HTTP server's threads, ``monitor status`` and the drain of ``run --once``
at once, so one admin client is shared under a lock (kafka-python does not promise that
its admin client is thread-safe), and dead letters are read by a consumer of the call's
own, outside any group.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.errors import ServiceUnavailable
from monitor.queue.base import GROUPS, QueueAdmin
from monitor.queue.kafka_records import H_ERROR, H_TOPIC, KAFKA_ERRORS, OffsetSpec, header, kafka

if TYPE_CHECKING:
    from monitor.queue.kafka import KafkaQueue

log = logging.getLogger("monitor.queue")

T = TypeVar("T")
_TOPIC_EXISTS = 36  # Kafka's TOPIC_ALREADY_EXISTS: another process created it first


class KafkaAdminView(QueueAdmin):
    def __init__(self, queue: KafkaQueue) -> None:
        self.queue = queue
        self._lock = threading.Lock()
        self._client: Any = None

    def _call(self, what: str, fn: Callable[[Any], T]) -> T:
        """Run ``fn(admin client)`` under the lock; the broker's errors become
        ServiceUnavailable naming the broker and what was asked."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = kafka.KafkaAdminClient(
                        **self.queue.client_options(), client_id=f"{self.queue.prefix}-admin")
                return fn(self._client)
            except KAFKA_ERRORS as exc:
                text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise ServiceUnavailable(f"{self.queue.fault.name}: {what}: {text}") from exc

    # --- reachability ------------------------------------------------------------------
    def ping(self) -> None:
        """The broker answers a metadata request. That clears a fault left by a failed
        publish: the broker is back, and the next publish says so if it is not."""
        self._call("unreachable", lambda admin: admin.describe_cluster())
        self.queue.fault.succeeded(wrote=True)

    # --- lag ---------------------------------------------------------------------------
    def depth(self, topic: str) -> int:
        names = [self.queue.topic_name(topic), self.queue.retry_topic(topic)]
        group = self.queue.group_id(GROUPS[topic])
        return self._call(f"lag of {group}", lambda admin: _lag(admin, names, group))

    # --- dead letters ------------------------------------------------------------------
    def dead(self, topic: str) -> list[tuple[str, str]]:
        name = self.queue.dead_topic
        parts = self._call("describe", lambda admin: _partitions(admin, [name]))
        if not parts:
            return []
        try:
            records = _read_all(self.queue, parts)
        except KAFKA_ERRORS as exc:
            raise ServiceUnavailable(f"{self.queue.fault.name}: reading {name}: {exc}") from exc
        return [(bytes(r.key or b"").decode("utf-8", "replace"), header(r, H_ERROR) or "")
                for r in sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))
                if header(r, H_TOPIC) == topic]

    # --- topics ------------------------------------------------------------------------
    def ensure_topics(self, names: list[str], partitions: int) -> None:
        def create(admin: Any) -> None:
            missing = [n for n in names if n not in set(admin.list_topics())]
            if missing:
                spec = {n: {"num_partitions": partitions, "replication_factor": -1}
                        for n in missing}
                result = admin.create_topics(spec, raise_errors=False)
                for t in result.get("topics", []):
                    if t.get("error_code") not in (0, _TOPIC_EXISTS):
                        raise ServiceUnavailable(f"{self.queue.fault.name}: cannot create "
                                                 f"topic {t['name']}: {t.get('error_message')}")
                admin.wait_for_topics(missing, timeout_ms=int(self.queue.timeout * 1000))
                log.info("kafka_topics_created topics=%s partitions=%d", missing, partitions)
            for name, parts in _partitions_by_topic(admin, names).items():
                if len(parts) != partitions and name not in missing:
                    log.info("kafka_topic_kept topic=%s partitions=%d (queue.partitions is %d; "
                             "an existing topic is not changed)", name, len(parts), partitions)

        self._call("creating topics", create)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def _partitions_by_topic(admin: Any, names: list[str]) -> dict[str, list[Any]]:
    out = {}
    for t in admin.describe_topics(names):
        if t.get("error_code") == 0:
            out[t["name"]] = [kafka.TopicPartition(t["name"], p["partition_index"])
                              for p in t["partitions"]]
    return out


def _partitions(admin: Any, names: list[str]) -> list[Any]:
    return [tp for parts in _partitions_by_topic(admin, names).values() for tp in parts]


def _lag(admin: Any, names: list[str], group: str) -> int:
    """Records in ``names`` that ``group`` has not committed past; a partition the group
    never committed counts from its first record."""
    parts = _partitions(admin, names)
    if not parts:
        return 0
    ends = admin.list_partition_offsets(dict.fromkeys(parts, OffsetSpec.LATEST))
    starts = admin.list_partition_offsets(dict.fromkeys(parts, OffsetSpec.EARLIEST))
    done = admin.list_group_offsets({group: None}).get(group, {})
    lag = 0
    for tp in parts:
        committed = done[tp].offset if tp in done and done[tp].offset >= 0 else -1
        start = max(committed, starts[tp].offset)
        lag += max(0, ends[tp].offset - start)
    return lag


def _read_all(queue: KafkaQueue, parts: list[Any]) -> list[Any]:
    """Every record now in ``parts``, read by a consumer outside any group."""
    consumer = kafka.KafkaConsumer(**queue.client_options(), group_id=None,
                                   enable_auto_commit=False, auto_offset_reset="earliest",
                                   client_id=f"{queue.prefix}-admin-reader")
    try:
        consumer.assign(parts)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(parts)
        records: list[Any] = []
        deadline = time.monotonic() + queue.timeout
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"{queue.fault.name}: reading dead letters timed out")
            for batch in consumer.poll(timeout_ms=200).values():
                records += batch
        return records
    finally:
        consumer.close(autocommit=False)
