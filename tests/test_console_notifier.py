"""ConsoleNotifier: readable, terminal-safe alert blocks on stdout or a given stream."""

from __future__ import annotations

import io

import pytest

from monitor.errors import NotifyError
from monitor.notify.console import ConsoleNotifier, format_console
from tests.harness.slack_fixtures import make_alert


def test_console_prints_a_readable_block_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    alert = make_alert(summary="Officers were seen near Rutba, then Rutba again.")

    delivery = ConsoleNotifier().send(alert)

    out = capsys.readouterr().out
    assert delivery.destination == "console"
    assert out.startswith(f"[HIGH] syria-iraq  (alert {alert.id})\n")
    assert "  title:     Officers cross at Rutba\n" in out
    assert "  url:       https://news.example/story/1\n" in out
    assert "  source:    aljazeera\n" in out
    assert "  published: 2025-02-14 10:00 UTC\n" in out
    assert "  snippet:   Officers were seen near [[Rutba]], then [[Rutba]] again.\n" in out
    assert "  matched:   Rutba (topic)\n" in out
    assert out.endswith("\n\n")


def test_console_writes_to_the_given_stream_and_flushes() -> None:
    stream = io.StringIO()

    ConsoleNotifier(name="ops-console", stream=stream).send(make_alert())

    assert stream.getvalue() == format_console(make_alert()) + "\n\n"


def test_console_output_carries_no_terminal_escapes_or_html() -> None:
    alert = make_alert(
        title="\x1b[2J\x1b]0;pwned\x07<b>Rutba</b> \u202eevil",
        summary="<p>near &lt;Rutba&gt; \x00</p>",
        url="javascript:alert(1)",
    )

    text = format_console(alert)

    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert "\u202e" not in text and "<b>" not in text
    assert "  url:       (no usable link)" in text
    assert "[[Rutba]]" in text


def test_console_write_failure_is_a_permanent_notify_error() -> None:
    stream = io.StringIO()
    stream.close()

    with pytest.raises(NotifyError) as caught:
        ConsoleNotifier(stream=stream).send(make_alert())

    assert not caught.value.retryable
