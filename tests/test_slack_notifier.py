"""Slack notifiers against a real SlackStub on 127.0.0.1 (N01–N06, N08, X01, X02, X04, D02)."""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable
from email.utils import formatdate

import pytest

from monitor.errors import NotifyError
from monitor.models import Alert
from monitor.notify import slack as slack_module
from monitor.notify.base import Notifier
from monitor.notify.redact import install_redaction, redact
from monitor.notify.slack import SlackWebApiNotifier, SlackWebhookNotifier
from monitor.notify.slack_errors import parse_retry_after
from tests.harness.slack_fixtures import STUB_TOKEN, make_alert
from tests.harness.slackstub import Reply, SlackStub, closed_port, limit_problem

CHANNEL = "#osint-alerts"
Factory = Callable[..., Notifier]


def web_api(stub: SlackStub, timeout: float = 5) -> SlackWebApiNotifier:
    return SlackWebApiNotifier("slack", STUB_TOKEN, CHANNEL, api_url=stub.api_url, timeout=timeout)


def webhook(stub: SlackStub, timeout: float = 5) -> SlackWebhookNotifier:
    return SlackWebhookNotifier("slack-hook", stub.webhook_url(), timeout=timeout)


BOTH = pytest.mark.parametrize("factory", [web_api, webhook], ids=["web_api", "webhook"])


def send_error(notifier: Notifier, alert: Alert) -> NotifyError:
    with pytest.raises(NotifyError) as caught:
        notifier.send(alert)
    return caught.value


# -- success ---------------------------------------------------------------------------------


def test_web_api_post_carries_alert_id_metadata_and_no_unfurls(slack_stub: SlackStub) -> None:
    alert = make_alert(title="<!channel> Rutba", url="https://news.example/a|b")

    delivery = web_api(slack_stub).send(alert)

    (post,) = slack_stub.posts()
    assert delivery.destination == "slack" and delivery.ref == post["ts"]
    assert delivery.extra["channel"] == post["channel"]
    assert post["metadata"] == {
        "event_type": "monitor_alert",
        "event_payload": {"alert_id": alert.id},
    }
    assert post["unfurl_links"] is False and post["unfurl_media"] is False
    assert "link_names" not in post["body"] and "parse" not in post["body"]
    assert post["body"]["channel"] == CHANNEL
    assert "<!channel>" not in str(post["blocks"]) and "<!channel>" not in post["text"]
    assert "https://news.example/a%7Cb|" in post["blocks"][1]["text"]["text"]
    (request,) = slack_stub.requests("chat.postMessage")
    assert request["headers"]["Authorization"] == f"Bearer {STUB_TOKEN}"
    assert slack_stub.alert_ids() == [alert.id]


def test_webhook_post_carries_alert_id_in_first_block_and_no_unfurls(slack_stub: SlackStub) -> None:
    alert = make_alert()

    delivery = webhook(slack_stub).send(alert)

    (post,) = slack_stub.posts()
    assert delivery.destination == "slack-hook" and not delivery.reconciled
    assert post["via"] == "webhook"
    assert post["blocks"][0]["block_id"] == alert.id
    assert post["unfurl_links"] is False and post["unfurl_media"] is False
    assert slack_stub.alert_ids() == [alert.id]


@BOTH
def test_oversized_alert_passes_the_stub_size_validator(
    slack_stub: SlackStub, factory: Factory
) -> None:
    title = ("👍🏽&" * 40_000)[:100_000]
    summary = ("Rutba &amp; 🇸🇾 " * 70_000)[:1_000_000]
    alert = make_alert(title=title, summary=summary)
    assert len(alert.matches) >= 80

    factory(slack_stub).send(alert)

    assert slack_stub.alert_ids() == [alert.id]


def _mrkdwn(length: int) -> dict[str, str]:
    return {"type": "mrkdwn", "text": "y" * length}


def _plain(length: int) -> dict[str, str]:
    return {"type": "plain_text", "text": "h" * length}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"text": "x" * 40_001, "blocks": []}, "msg_too_long"),
        ({"text": "x", "blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
        ({"text": "x", "blocks": [{"type": "section", "text": _mrkdwn(3_001)}]}, "invalid_blocks"),
        ({"text": "x", "blocks": [{"type": "header", "text": _plain(151)}]}, "invalid_blocks"),
        ({"text": "x", "blocks": [{"type": "divider", "block_id": "b" * 256}]}, "invalid_blocks"),
    ],
)  # fmt: skip
def test_stub_rejects_payloads_over_slack_limits(
    slack_stub: SlackStub, monkeypatch: pytest.MonkeyPatch, message: dict[str, object], error: str
) -> None:
    monkeypatch.setattr(slack_module, "build_slack_message", lambda alert: message)

    failure = send_error(web_api(slack_stub), make_alert())

    assert not failure.retryable and error in str(failure)
    assert slack_stub.posts() == []


def test_stub_validator_requires_text_or_blocks() -> None:
    assert limit_problem({"text": "", "blocks": []}) == "no_text"
    assert limit_problem({"text": "fine", "blocks": [{"type": "divider"}]}) is None


# -- rate limits -------------------------------------------------------------------------------


@BOTH
def test_429_retry_after_seconds_is_reported(slack_stub: SlackStub, factory: Factory) -> None:
    slack_stub.script([(429, {"Retry-After": "2"}, None)])

    error = send_error(factory(slack_stub), make_alert())

    assert error.retryable and not error.ambiguous
    assert error.retry_after == 2.0
    assert slack_stub.posts() == []
    assert len(slack_stub.history) == 1  # no SDK retry behind our back


def test_scripted_429s_then_5xx_then_success_are_each_reported(slack_stub: SlackStub) -> None:
    slack_stub.script([(429, {"Retry-After": "2"}, ...)] * 10 + [(500, {}, ...)] * 5)
    notifier = web_api(slack_stub)

    errors = [send_error(notifier, make_alert()) for _ in range(15)]
    notifier.send(make_alert())

    assert [e.retry_after for e in errors] == [2.0] * 10 + [None] * 5
    assert all(e.retryable for e in errors)
    assert slack_stub.alert_ids() == [make_alert().id]


@BOTH
def test_429_retry_after_http_date_is_reported(slack_stub: SlackStub, factory: Factory) -> None:
    slack_stub.script([(429, {"Retry-After": formatdate(time.time() + 30, usegmt=True)}, None)])

    error = send_error(factory(slack_stub), make_alert())

    assert error.retryable and error.retry_after is not None
    assert 25 <= error.retry_after <= 31


@BOTH
@pytest.mark.parametrize("header", [None, "abc", "-1", "", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_429_with_unusable_retry_after_falls_back_to_backoff(
    slack_stub: SlackStub, factory: Factory, header: str | None
) -> None:
    slack_stub.script([(429, {} if header is None else {"Retry-After": header}, None)])

    error = send_error(factory(slack_stub), make_alert())

    assert error.retryable and error.retry_after is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("86400", 86400.0),
        ("-1", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", None),  # in the past
        ("Wed, 99 Oct 2015 07:28:00 GMT", None),
        ("Wed, 21 Oct 2015 07:28:30", 30.0),  # no zone: read as GMT
    ],
)
def test_parse_retry_after_reads_both_forms_and_never_raises(
    value: str | None, expected: float | None
) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now=now) == expected


def test_stub_leaky_bucket_limits_a_burst(slack_stub: SlackStub) -> None:
    slack_stub.rate_limit(burst=5, per_second=1.0)
    notifier = web_api(slack_stub)
    for n in range(5):
        notifier.send(make_alert(alert_id=f"a-{n}"))

    error = send_error(notifier, make_alert(alert_id="a-5"))

    assert error.retryable and error.retry_after is not None and error.retry_after >= 1
    assert len(slack_stub.posts()) == 5


# -- server errors and permanent errors ---------------------------------------------------------


@BOTH
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable_and_not_retried_by_the_sdk(
    slack_stub: SlackStub, factory: Factory, status: int
) -> None:
    slack_stub.script([(status, {}, "<html>upstream error</html>")] * 3)
    notifier = factory(slack_stub)

    errors = [send_error(notifier, make_alert()) for _ in range(3)]
    notifier.send(make_alert())

    assert all(e.retryable and not e.ambiguous and e.retry_after is None for e in errors)
    assert len(slack_stub.history) == 4
    assert slack_stub.alert_ids() == [make_alert().id]


@pytest.mark.parametrize(
    "error_code",
    [
        "channel_not_found",
        "not_in_channel",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "is_archived",
        "msg_too_long",
        "invalid_blocks",
        "some_future_error",
    ],
)
def test_web_api_permanent_errors_are_not_retryable(slack_stub: SlackStub, error_code: str) -> None:
    slack_stub.script([Reply.error(error_code)])

    error = send_error(web_api(slack_stub), make_alert())

    assert not error.retryable and not error.ambiguous
    assert error_code in str(error)
    assert len(slack_stub.history) == 1


@pytest.mark.parametrize("error_code", ["internal_error", "fatal_error", "service_unavailable"])
def test_web_api_transient_errors_are_retryable(slack_stub: SlackStub, error_code: str) -> None:
    slack_stub.script([Reply.error(error_code)])

    assert send_error(web_api(slack_stub), make_alert()).retryable


def test_wrong_token_is_a_permanent_invalid_auth(slack_stub: SlackStub) -> None:
    notifier = SlackWebApiNotifier("slack", "xoxb-wrong", CHANNEL, api_url=slack_stub.api_url)

    error = send_error(notifier, make_alert())

    assert not error.retryable and "invalid_auth" in str(error)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "no_service"),
        (410, "channel_is_archived"),
    ],
)
def test_webhook_non_200_is_a_permanent_failure(
    slack_stub: SlackStub, status: int, body: str
) -> None:
    slack_stub.script([(status, {}, body)])

    error = send_error(webhook(slack_stub), make_alert())

    assert not error.retryable and body in str(error)
    assert len(slack_stub.history) == 1


@BOTH
def test_connection_refused_is_retryable_and_not_ambiguous(
    slack_stub: SlackStub, factory: Factory
) -> None:
    port = closed_port()
    if factory is web_api:
        notifier: Notifier = SlackWebApiNotifier(
            "slack", STUB_TOKEN, CHANNEL, api_url=f"http://127.0.0.1:{port}/api/", timeout=2
        )
    else:
        notifier = SlackWebhookNotifier(
            "hook", f"http://127.0.0.1:{port}/services/T/B/S", timeout=2
        )

    error = send_error(notifier, make_alert())

    assert error.retryable and not error.ambiguous


# -- ambiguous outcomes and reconcile (N05, D02) -------------------------------------------------


@BOTH
def test_stall_after_accepting_is_ambiguous(slack_stub: SlackStub, factory: Factory) -> None:
    slack_stub.script([Reply.ambiguous_stall(4)])
    notifier = factory(slack_stub, timeout=1)

    started = time.monotonic()
    error = send_error(notifier, make_alert())

    assert error.retryable and error.ambiguous
    assert time.monotonic() - started < 3.5
    assert len(slack_stub.posts()) == 1


@BOTH
def test_reset_after_accepting_is_ambiguous(slack_stub: SlackStub, factory: Factory) -> None:
    slack_stub.script([Reply.ambiguous_reset()])

    error = send_error(factory(slack_stub), make_alert())

    assert error.retryable and error.ambiguous


def test_web_api_reconcile_finds_a_stalled_post_and_prevents_a_duplicate(
    slack_stub: SlackStub,
) -> None:
    alert = make_alert()
    slack_stub.script([Reply.ambiguous_stall(4)])
    assert send_error(web_api(slack_stub, timeout=1), alert).ambiguous

    restarted = web_api(slack_stub)  # a fresh process: knows only the channel name
    delivery = restarted.reconcile(alert)

    assert delivery is not None and delivery.reconciled
    assert delivery.ref == slack_stub.posts()[0]["ts"]
    assert slack_stub.alert_ids() == [alert.id]
    (history_call,) = slack_stub.requests("conversations.history")
    assert history_call["body"]["include_all_metadata"] in ("1", "true")
    assert float(history_call["body"]["oldest"]) <= alert.created_at - 60


def test_web_api_reconcile_returns_none_when_the_post_never_landed(slack_stub: SlackStub) -> None:
    notifier = web_api(slack_stub)
    notifier.send(make_alert(alert_id="a-other"))
    slack_stub.script([Reply.ambiguous_reset(accept=False)])
    alert = make_alert()
    assert send_error(notifier, alert).ambiguous

    assert notifier.reconcile(alert) is None


def test_web_api_reconcile_pages_through_history(slack_stub: SlackStub) -> None:
    notifier = web_api(slack_stub)
    alert = make_alert()
    notifier.send(alert)
    channel = slack_stub.posts()[0]["channel"]
    for n in range(450):
        slack_stub.add_message(
            channel,
            {
                "text": f"other {n}",
                "metadata": {
                    "event_type": "monitor_alert",
                    "event_payload": {"alert_id": f"a-{n}"},
                },
            },
        )

    delivery = notifier.reconcile(alert)

    assert delivery is not None and delivery.ref == slack_stub.posts()[0]["ts"]
    assert len(slack_stub.requests("conversations.history")) == 3


def test_web_api_reconcile_raises_when_history_cannot_be_read(slack_stub: SlackStub) -> None:
    notifier = web_api(slack_stub)
    notifier.send(make_alert(alert_id="a-other"))
    slack_stub.script([(503, {}, "<html>down</html>")], kind="history")

    with pytest.raises(NotifyError) as caught:
        notifier.reconcile(make_alert())

    assert caught.value.retryable


def test_webhook_cannot_reconcile(slack_stub: SlackStub) -> None:
    notifier = webhook(slack_stub)
    notifier.send(make_alert())

    assert notifier.reconcile(make_alert()) is None


# -- X04: secrets never leak -------------------------------------------------------------------

CANARY_TOKEN = "xoxb-CANARY-TOKEN"
CANARY_HOOK = "CANARY-WEBHOOK-SECRET"


def test_redact_masks_tokens_webhook_paths_and_bearer_values() -> None:
    text = (
        f"POST https://hooks.slack.com/services/T0/B0/{CANARY_HOOK}, "
        f"token={CANARY_TOKEN} xoxp-1-2 xapp-1-A Authorization: Bearer abc"
    )

    cleaned = redact(text)

    assert CANARY_HOOK not in cleaned and "CANARY-TOKEN" not in cleaned and "abc" not in cleaned
    assert "/services/[REDACTED]," in cleaned and "xoxb-[REDACTED]" in cleaned


def test_install_redaction_covers_sdk_loggers_and_root_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        install_redaction()
        logging.getLogger("slack_sdk.webhook.client").info("url: /services/T0/B0/%s", CANARY_HOOK)
        logging.getLogger("unrelated").warning("token %s", CANARY_TOKEN)
        try:
            raise RuntimeError(f"boom {CANARY_TOKEN}")
        except RuntimeError:
            logging.getLogger("unrelated").exception("failed")

    text = caplog.text + "".join(str(r.exc_text) for r in caplog.records)
    assert CANARY_HOOK not in text and "CANARY-TOKEN" not in text
    assert "[REDACTED]" in text


def _leaks(text: str) -> bool:
    return CANARY_HOOK in text or "CANARY-TOKEN" in text


@pytest.mark.parametrize("kind", ["web_api", "webhook"])
def test_canary_secrets_never_appear_in_logs_errors_or_reprs(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    seen: list[str] = []
    with SlackStub(token=CANARY_TOKEN) as stub, caplog.at_level(logging.DEBUG):
        if kind == "web_api":
            notifier: Notifier = SlackWebApiNotifier(
                "slack", CANARY_TOKEN, CHANNEL, api_url=stub.api_url, timeout=1
            )
            dead: Notifier = SlackWebApiNotifier(
                "slack", CANARY_TOKEN, CHANNEL, api_url=f"http://127.0.0.1:{closed_port()}/api/"
            )
        else:
            notifier = SlackWebhookNotifier("hook", stub.webhook_url(CANARY_HOOK), timeout=1)
            dead = SlackWebhookNotifier(
                "hook", f"http://127.0.0.1:{closed_port()}/services/T0/B0/{CANARY_HOOK}"
            )
        stub.script(
            [
                Reply.ambiguous_reset(),
                (500, {}, "oops"),
                Reply.ambiguous_stall(3),
                (429, {"Retry-After": "1"}, None),
                Reply.error("invalid_auth", 403),
            ]
        )
        for _ in range(5):
            seen.extend(_exception_texts(notifier))
        notifier.send(make_alert())
        notifier.reconcile(make_alert())
        seen.extend(_exception_texts(dead))
        monkeypatch.setattr(slack_module, "build_slack_message", _failpoint)
        seen.extend(_exception_texts(notifier))
        seen += [repr(notifier), str(notifier), repr(dead), repr(vars(notifier).keys())]

    assert len(stub.posts()) >= 3  # reset + stall accepted, then the real post
    captured = capsys.readouterr()
    records = [logging.Formatter().format(r) for r in caplog.records]
    assert any("Sending a request" in r for r in records)  # DEBUG from the SDK was captured
    for text in [*seen, *records, captured.out, captured.err]:
        assert not _leaks(text), text


def _failpoint(alert: Alert) -> dict[str, object]:
    raise RuntimeError("failpoint inside the notifier")


def _exception_texts(notifier: Notifier) -> list[str]:
    try:
        notifier.send(make_alert())
    except Exception as exc:  # every exception the notifier lets out
        return [str(exc), repr(exc), "".join(traceback.format_exception(exc)), repr(exc.args)]
    return []


def test_webhook_url_is_validated_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        SlackWebhookNotifier("hook", f"hooks.slack.com/services/T0/B0/{CANARY_HOOK}")

    assert not _leaks(str(caught.value))
    assert re.search("http", str(caught.value))
