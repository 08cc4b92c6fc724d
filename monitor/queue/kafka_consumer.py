"""A Kafka subscription: one consumer in one group, reading a topic and its retry topic.

The rules it keeps:

* **Commit after the result is stored.** ``commit`` marks messages finished and commits,
  per partition, the offset after the highest *contiguous* finished one
  (``monitor.queue.offsets``); a crash before that replays from there, and the stages'
  content-derived ids make the replay harmless. Nothing is committed automatically.
* **One thread.** kafka-python's consumer is not thread-safe; the first thread to use a
  subscription owns it and any other raises. The daemon keeps its stages on one dedicated
  worker thread for this.
* **Commit on revoke.** A rebalance that takes partitions away first commits what is
  finished in them (``ConsumerRebalanceListener``), then forgets them: the next owner
  starts from the committed offset.
* **A batch cut short comes again.** At the next ``poll``, partitions with messages
  handed out but not finished are rewound to the first of them (already finished ones
  are skipped), so an error mid-batch does not leave a message stuck until a restart.
* **A join is waited out.** While the group is (re)joining, ``poll`` keeps polling until
  the join is done (at most ``JOIN_BUDGET``), whatever its ``timeout``: kafka-python
  3.0.12 throws away a join that completes while no ``poll`` waits for it and sends a new
  JoinGroup, so a consumer polled in short turns with another never joins.
* **Retries wait without blocking anything.** ``retry`` produces the message to the
  retry topic with a not-before time (or to the dead-letter topic after the last attempt)
  before its offset counts as finished. A retry record read before it is due waits in
  memory, uncommitted (a crash reads it again), and is handed out once due; records after
  it keep flowing. (Not ``pause``/``seek``: kafka-python 3.0.12 never hands back records
  it parked for a paused partition once another partition's records hold its slot.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from monitor.errors import StoreError
from monitor.queue.base import MAX_ATTEMPTS, Message, Subscription
from monitor.queue.kafka_records import (
    H_TOPIC,
    KAFKA_ERRORS,
    ConsumerRebalanceListener,
    attempts_of,
    header,
    kafka,
    not_before,
)
from monitor.queue.offsets import OffsetTracker

if TYPE_CHECKING:
    from monitor.queue.kafka import KafkaQueue

log = logging.getLogger("monitor.queue")

#: Longest a poll waits for its group to (re)join before it returns empty-handed. A
#: rebalance waits for every member to rejoin; this keeps the stage loop turning.
JOIN_BUDGET = 60.0


class KafkaSubscription(Subscription):
    def __init__(self, queue: KafkaQueue, topic: str, group: str) -> None:
        self.queue, self.topic, self.group = queue, topic, group
        self.name = queue.topic_name(topic)
        self._offsets: OffsetTracker[Any] = OffsetTracker()
        self._waiting: dict[Any, dict[int, tuple[float, Message]]] = {}  # not yet due
        self._owner: int | None = None
        self._consumer: Any = None

    # --- the consumer ------------------------------------------------------------------
    def _own(self) -> Any:
        me = threading.get_ident()
        if self._owner is None:
            self._owner = me
        elif self._owner != me:
            raise RuntimeError(f"subscription {self.group}/{self.name} used from a second "
                               "thread: a Kafka consumer belongs to one thread")
        if self._consumer is None:
            self._consumer = self._connect()
        return self._consumer

    def _connect(self) -> Any:
        session = int(self.queue.session_timeout * 1000)
        try:
            consumer = kafka.KafkaConsumer(
                **self.queue.client_options(), group_id=self.group,
                client_id=f"{self.group}-{self.topic}", enable_auto_commit=False,
                auto_offset_reset="earliest", session_timeout_ms=session,
                heartbeat_interval_ms=max(100, session // 3))
            consumer.subscribe([self.name, self.queue.retry_topic(self.topic)],
                               listener=_OnRebalance(self))
        except KAFKA_ERRORS as exc:
            raise self.queue.fault.failed(exc, write=False) from exc
        return consumer

    # --- the seam ----------------------------------------------------------------------
    def poll(self, limit: int, timeout: float = 0.0) -> list[Message]:
        consumer = self._own()
        started = time.monotonic()
        deadline, join_deadline = started + timeout, started + JOIN_BUDGET
        try:
            self._rewind(consumer)
            out = self._due(limit)
            while len(out) < limit:
                now = time.monotonic()
                wait = max(0.0, deadline - now) or (0.2 if _joining(consumer) else 0.0)
                batches = consumer.poll(timeout_ms=int(wait * 1000), max_records=limit - len(out))
                out += self._accept(batches)
                now = time.monotonic()
                if _joining(consumer) and now < join_deadline:
                    deadline = max(deadline, now + max(timeout, 0.2))  # a fetch once joined
                    continue
                if out or now >= deadline:
                    break
            self._commit_progress(consumer)  # records skipped as not ours count as done
        except KAFKA_ERRORS as exc:
            raise self.queue.fault.failed(exc, write=False) from exc
        self.queue.fault.succeeded(wrote=False)
        return out

    def commit(self, messages: Sequence[Message]) -> None:
        consumer = self._own()
        for m in messages:
            self._offsets.finish(*m.receipt)
        self._commit_progress(consumer)

    def retry(self, message: Message, *, delay: float, error: str,
              max_attempts: int = MAX_ATTEMPTS) -> bool:
        consumer = self._own()
        value = json.dumps(message.payload).encode()
        dead = message.attempts >= max_attempts
        if dead:
            self.queue.dead_letter(self.topic, message.key, value, message.attempts, error)
        else:
            self.queue.retry_later(self.topic, message.key, value, message.attempts, delay,
                                   error)
        self._offsets.finish(*message.receipt)
        self._commit_progress(consumer)
        return dead

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            with contextlib.suppress(StoreError):  # said once; the uncommitted come again
                self._commit_progress(consumer)
        finally:
            consumer.close(autocommit=False, timeout_ms=int(self.queue.timeout * 1000))

    # --- inside a poll -----------------------------------------------------------------
    def _rewind(self, consumer: Any) -> None:
        """Seek back to the first message handed to the stage and left unfinished."""
        assigned = consumer.assignment()
        for tp, offset in self._offsets.unfinished(self._is_waiting).items():
            if tp in assigned:
                consumer.seek(tp, offset)

    def _is_waiting(self, tp: Any, offset: int) -> bool:
        return offset in self._waiting.get(tp, {})

    def _due(self, limit: int) -> list[Message]:
        now, out = time.time(), list[Message]()
        for waiting in self._waiting.values():
            for offset, (when, message) in sorted(waiting.items()):
                if when <= now and len(out) < limit:
                    out.append(message)
                    del waiting[offset]
        return out

    def _accept(self, batches: dict[Any, list[Any]]) -> list[Message]:
        out = []
        for tp, records in batches.items():
            for record in records:
                message = self._message(tp, record)
                if message is not None:
                    out.append(message)
        return out

    def _message(self, tp: Any, record: Any) -> Message | None:
        retry = tp.topic != self.name
        if retry and header(record, H_TOPIC) != self.topic:  # not ours (a stray record)
            if self._offsets.handed_out(tp, record.offset):
                self._offsets.finish(tp, record.offset)
            return None
        if self._is_waiting(tp, record.offset) or not self._offsets.handed_out(tp, record.offset):
            return None  # waiting already, or finished before a rewind brought it back
        key = bytes(record.key or b"").decode("utf-8", "replace")
        message = Message(self.topic, key, json.loads(record.value),
                          attempts_of(record) + 1 if retry else 1, (tp, record.offset))
        due = not_before(record) if retry else 0.0
        if due > time.time():
            self._waiting.setdefault(tp, {})[record.offset] = (due, message)
            return None
        return message

    def _commit_progress(self, consumer: Any) -> None:
        offsets = self._offsets.committable()
        if not offsets:
            return
        assigned = consumer.assignment()
        mine = {tp: off for tp, off in offsets.items() if tp in assigned}
        if mine:
            try:
                consumer.commit({tp: kafka.OffsetAndMetadata(off, "", -1)
                                 for tp, off in mine.items()})
            except kafka.errors.CommitFailedError as exc:  # a rebalance took them: replayed
                log.info("kafka_commit_lost group=%s error=%r (the partitions' next owner "
                         "processes these messages again)", self.group, str(exc))
                self._offsets.forget(mine)
                return
            except KAFKA_ERRORS as exc:
                raise self.queue.fault.failed(exc, write=True) from exc
        self._offsets.committed(mine)
        self._offsets.forget(set(offsets) - set(mine))

    def _revoked(self, consumer: Any, revoked: set[Any]) -> None:
        with contextlib.suppress(StoreError):  # the next owner replays what is uncommitted
            self._commit_progress(consumer)
        self._offsets.forget(revoked)
        for tp in revoked:
            self._waiting.pop(tp, None)


def _joining(consumer: Any) -> bool:
    """The group is being (re)joined: kafka-python's coordinator says a join is needed.
    (A private attribute, checked defensively: the version is pinned below 3.1.)"""
    need = getattr(getattr(consumer, "_coordinator", None), "need_rejoin", None)
    return bool(need()) if callable(need) else not consumer.assignment()


class _OnRebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Called inside ``consumer.poll``, on the subscription's own thread."""

    def __init__(self, sub: KafkaSubscription) -> None:
        self.sub = sub

    def on_partitions_revoked(self, revoked: Any) -> None:
        if self.sub._consumer is not None and revoked:
            self.sub._revoked(self.sub._consumer, set(revoked))
            log.info("kafka_revoked group=%s partitions=%s", self.sub.group,
                     _names(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        # INFO: rebalances are rare and an operator scaling a role out wants to see who
        # took which partitions (a benchmark waits for this line too).
        log.info("kafka_assigned group=%s partitions=%s", self.sub.group, _names(assigned))


def _names(partitions: Any) -> str:
    """``items:0,items.retry:0``: the topic after its prefix, and the partition."""
    return ",".join(f"{tp.topic.split('.', 1)[-1]}:{tp.partition}"
                    for tp in sorted(partitions, key=lambda tp: (tp.topic, tp.partition)))
