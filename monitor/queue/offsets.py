"""Which Kafka offsets may be committed: the highest contiguous processed one per partition.

Kafka keeps one committed offset per (group, partition): "everything before this is done".
Stages finish messages in any order (a retried one is finished when its retry record is
produced), so the commit point may only move past a message once every message handed out
before it in its partition is finished too; otherwise a crash would skip the unfinished
one. This is the rule Faust's consumer follows. The offsets handed out are tracked, not
assumed consecutive, because a partition may have gaps (transaction markers, compaction).

Pure bookkeeping, no I/O, so it is tested on its own.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)  # a partition: kafka's TopicPartition in practice


@dataclass
class _Partition:
    handed: list[int] = field(default_factory=list)  # sorted, above the commit point
    done: set[int] = field(default_factory=set)
    committed: int = -1  # the last offset committed to the broker (as "next to read")


class OffsetTracker(Generic[P]):
    def __init__(self) -> None:
        self._parts: dict[P, _Partition] = {}

    def handed_out(self, part: P, offset: int) -> bool:
        """Record an offset given to the stage. False if it needs no handing out: it is
        already finished (a re-fetch after a rewind) or below the commit point."""
        p = self._parts.setdefault(part, _Partition())
        if offset in p.done or offset < p.committed:
            return False
        i = bisect.bisect_left(p.handed, offset)
        if i == len(p.handed) or p.handed[i] != offset:
            p.handed.insert(i, offset)
        return True

    def finish(self, part: P, offset: int) -> None:
        p = self._parts.get(part)
        if p is not None and offset >= p.committed:
            p.done.add(offset)

    def committable(self) -> dict[P, int]:
        """Per partition whose contiguous finished prefix grew: the offset to commit (the
        next one to read). Call ``committed`` once the broker has taken it."""
        out = {}
        for part, p in self._parts.items():
            n = 0
            while n < len(p.handed) and p.handed[n] in p.done:
                n += 1
            if n:
                out[part] = p.handed[n - 1] + 1
        return out

    def committed(self, offsets: dict[P, int]) -> None:
        for part, upto in offsets.items():
            p = self._parts.get(part)
            if p is None:
                continue
            n = bisect.bisect_left(p.handed, upto)
            for offset in p.handed[:n]:
                p.done.discard(offset)
            del p.handed[:n]
            p.committed = max(p.committed, upto)

    def unfinished(self, skip: Callable[[P, int], bool] | None = None) -> dict[P, int]:
        """Per partition, the lowest offset handed out, not finished and not ``skip``ped
        (held back on purpose): where to seek back to so an abandoned batch is read again."""
        out = {}
        for part, p in self._parts.items():
            for offset in p.handed:
                if offset not in p.done and not (skip and skip(part, offset)):
                    out[part] = offset
                    break
        return out

    def forget(self, parts: Iterable[P]) -> None:
        """Partitions taken away by a rebalance: their next owner starts from the broker's
        committed offset."""
        for part in parts:
            self._parts.pop(part, None)
