"""What a retry or dead-letter record carries, in Kafka headers, so any reader (the group's
subscription, ``monitor status``) knows its topic, attempts, due time and reason."""

from __future__ import annotations

import time
import warnings
from typing import Any

with warnings.catch_warnings():
    # kafka-python 3.0.12 reads its protocol schemas with importlib.resources.read_text,
    # deprecated since Python 3.11: a warning at import time that is not ours to fix (and
    # an error under the test suite's filterwarnings). The Kafka modules import it here.
    warnings.simplefilter("ignore", DeprecationWarning)
    import kafka  # type: ignore[import-untyped]
    import kafka.admin  # type: ignore[import-untyped]
    import kafka.errors  # type: ignore[import-untyped]
    from kafka.admin import OffsetSpec
    from kafka.consumer.subscription_state import (  # type: ignore[import-untyped]
        ConsumerRebalanceListener,
    )

__all__ = ["KAFKA_ERRORS", "ConsumerRebalanceListener", "OffsetSpec", "kafka"]

H_TOPIC, H_ATTEMPTS, H_NOT_BEFORE, H_ERROR = ("monitor-topic", "monitor-attempts",
                                              "monitor-not-before", "monitor-error")
#: What kafka-python raises when the broker cannot be reached or refuses a request.
KAFKA_ERRORS: tuple[type[BaseException], ...] = (kafka.errors.KafkaError, OSError)

Headers = list[tuple[str, bytes]]


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode("utf-8", "replace")
    return None


def retry_headers(topic: str, attempts: int, delay: float, error: str) -> Headers:
    """``attempts``: tries that failed so far; the next delivery is ``attempts + 1``."""
    return [(H_TOPIC, topic.encode()), (H_ATTEMPTS, str(attempts).encode()),
            (H_NOT_BEFORE, f"{time.time() + delay:.3f}".encode()),
            (H_ERROR, error[:2000].encode())]


def dead_headers(topic: str, attempts: int, error: str) -> Headers:
    return [(H_TOPIC, topic.encode()), (H_ATTEMPTS, str(attempts).encode()),
            (H_ERROR, error[:2000].encode())]


def attempts_of(record: Any) -> int:
    """Failed tries recorded on a retry record (0 for a record of the topic itself)."""
    text = header(record, H_ATTEMPTS)
    return int(text) if text and text.isdigit() else 0


def not_before(record: Any) -> float:
    text = header(record, H_NOT_BEFORE)
    try:
        return float(text) if text else 0.0
    except ValueError:
        return 0.0
