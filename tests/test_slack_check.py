"""Slack preflight (``monitor check --slack``): ``verify()`` against a real SlackStub on
127.0.0.1. It must tell the operator what is wrong and what to do, never post, never raise
for Slack or transport failures, and never print the token."""

from __future__ import annotations

import pytest

from monitor.errors import NotifyError
from monitor.notify.slack import SlackFinding, SlackWebApiNotifier, SlackWebhookNotifier
from tests.harness.slack_fixtures import STUB_TOKEN, make_alert
from tests.harness.slackstub import Reply, SlackStub, closed_port

CHANNEL = "#osint-alerts"
ALL_SCOPES = ("chat:write", "channels:read", "groups:read", "channels:history", "groups:history")


def notifier(
    stub: SlackStub, channel: str = CHANNEL, token: str = STUB_TOKEN, timeout: float = 5
) -> SlackWebApiNotifier:
    return SlackWebApiNotifier("slack", token, channel, api_url=stub.api_url, timeout=timeout)


def check(
    stub: SlackStub, channel: str = CHANNEL, token: str = STUB_TOKEN, timeout: float = 5
) -> list[SlackFinding]:
    return notifier(stub, channel, token, timeout).verify()


def failing(findings: list[SlackFinding]) -> list[str]:
    return [f.text for f in findings if not f.ok]


@pytest.fixture
def scoped_stub(request: pytest.FixtureRequest) -> SlackStub:
    """A stub whose token has ``request.param`` scopes (and says so in X-OAuth-Scopes)."""
    stub = SlackStub(token=STUB_TOKEN, scopes=request.param).start()
    request.addfinalizer(stub.stop)
    return stub


# -- all good ----------------------------------------------------------------------------------


def test_good_token_and_member_channel_gives_only_ok_findings(slack_stub: SlackStub) -> None:
    channel_id = slack_stub.add_channel("osint-alerts")

    findings = check(slack_stub)

    assert findings == [
        SlackFinding(True, "token ok: bot @monitor (U012) in team Acme"),
        SlackFinding(True, f"channel #osint-alerts ({channel_id}) exists and the bot is a member"),
    ]
    assert [r["path"] for r in slack_stub.history] == [
        "/api/auth.test",
        "/api/conversations.list",
        "/api/conversations.info",
    ]
    assert slack_stub.posts() == []


def test_channel_given_by_id_is_checked_without_listing(slack_stub: SlackStub) -> None:
    slack_stub.add_channel("osint-alerts", channel_id="C0123ABCD")

    findings = check(slack_stub, channel="C0123ABCD")

    assert all(f.ok for f in findings)
    assert findings[-1].text == "channel #osint-alerts (C0123ABCD) exists and the bot is a member"
    assert slack_stub.requests("conversations.list") == []
    (info,) = slack_stub.requests("conversations.info")
    assert info["body"]["channel"] == "C0123ABCD"


def test_channel_found_on_a_later_list_page(slack_stub: SlackStub) -> None:
    for n in range(450):
        slack_stub.add_channel(f"other-{n:03d}")
    slack_stub.add_channel("osint-alerts")

    findings = check(slack_stub)

    assert all(f.ok for f in findings), findings
    assert len(slack_stub.requests("conversations.list")) == 3


def test_channel_the_stub_created_for_a_post_counts_as_joined(slack_stub: SlackStub) -> None:
    notifier(slack_stub).send(make_alert())

    assert all(f.ok for f in check(slack_stub))


def test_good_scopes_listed_by_slack_give_only_ok_findings() -> None:
    with SlackStub(token=STUB_TOKEN, scopes=ALL_SCOPES) as stub:
        stub.add_channel("osint-alerts", private=True)

        findings = check(stub)

    assert failing(findings) == []
    assert findings[-1].text.startswith("private channel #osint-alerts (")


def test_user_token_is_ok_with_a_note(slack_stub: SlackStub) -> None:
    identity = {"ok": True, "user": "alice", "user_id": "U9", "team": "Acme", "team_id": "T1"}
    slack_stub.script([Reply(body=identity)], kind="auth")
    slack_stub.add_channel("osint-alerts")

    token = check(slack_stub)[0]

    assert token.ok and token.text.startswith("token ok: user @alice (U9) in team Acme")
    assert "bot token" in token.text


def test_webhook_verify_says_it_cannot_check_without_posting(slack_stub: SlackStub) -> None:
    hook = SlackWebhookNotifier("hook", slack_stub.webhook_url("HOOK-SECRET"))

    (finding,) = hook.verify()

    assert finding.ok and "without posting" in finding.text
    assert "HOOK-SECRET" not in finding.text and "/services/" not in finding.text
    assert slack_stub.history == []


# -- the token ---------------------------------------------------------------------------------


def test_bad_token_fails_says_what_to_do_and_stops(slack_stub: SlackStub) -> None:
    findings = check(slack_stub, token="xoxb-wrong-token-123")

    (finding,) = findings
    assert not finding.ok
    assert finding.text.startswith("token not valid (auth.test: invalid_auth)")
    assert "SLACK_BOT_TOKEN" in finding.text
    assert "wrong-token" not in finding.text
    assert [r["path"] for r in slack_stub.history] == ["/api/auth.test"]


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        ("not_authed", "set SLACK_BOT_TOKEN"),
        ("token_revoked", "reinstall the app"),
        ("account_inactive", "deactivated"),
    ],
)
def test_unusable_token_errors_each_say_what_to_do(
    slack_stub: SlackStub, error: str, advice: str
) -> None:
    slack_stub.script([Reply.error(error)], kind="auth")

    (finding,) = check(slack_stub)

    assert not finding.ok and f"token not valid (auth.test: {error})" in finding.text
    assert advice in finding.text


# -- the channel -------------------------------------------------------------------------------


def test_unknown_channel_name_is_not_found_and_mentions_private_channels(
    slack_stub: SlackStub,
) -> None:
    slack_stub.add_channel("general")

    token, channel = check(slack_stub, channel="#osint-alrets")

    assert token.ok and not channel.ok
    assert channel.text.startswith("channel #osint-alrets not found among the 1 channel the")
    assert "groups:read" in channel.text and "/invite @monitor" in channel.text
    assert slack_stub.requests("conversations.info") == []


@pytest.mark.parametrize(
    ("scoped_stub", "says"),
    [
        (("chat:write", "channels:read", "channels:history"), "the token lacks groups:read"),
        (ALL_SCOPES, "the token has groups:read, so if #osint-alerts is private the bot is not"),
    ],
    indirect=["scoped_stub"],
)
def test_private_channel_the_bot_is_not_in_is_explained_by_the_granted_scopes(
    scoped_stub: SlackStub, says: str
) -> None:
    scoped_stub.add_channel("osint-alerts", private=True, member=False)

    (channel,) = failing(check(scoped_stub))

    assert "#osint-alerts not found" in channel and says in channel


def test_channel_id_not_found(slack_stub: SlackStub) -> None:
    (channel,) = failing(check(slack_stub, channel="C0NOSUCH1"))

    assert channel.startswith("channel C0NOSUCH1 not found (conversations.info: channel_not_found)")
    assert "private" in channel


def test_bot_not_a_member_is_told_to_invite_the_bot() -> None:
    with SlackStub(token=STUB_TOKEN, bot_name="alertbot") as stub:
        channel_id = stub.add_channel("osint-alerts", member=False)

        (channel,) = failing(check(stub))

        assert channel.startswith(f"channel #osint-alerts ({channel_id}) exists but the bot is")
        assert "/invite @alertbot" in channel
        # the stub agrees with the finding: a post there fails as Slack's would
        with pytest.raises(Exception, match="not_in_channel"):
            notifier(stub).send(make_alert())


def test_archived_channel_fails(slack_stub: SlackStub) -> None:
    channel_id = slack_stub.add_channel("osint-alerts", archived=True)

    (channel,) = failing(check(slack_stub))

    assert channel.startswith(f"channel #osint-alerts ({channel_id}) is archived")


def test_archived_channel_is_not_resolved_for_sending(slack_stub: SlackStub) -> None:
    """The send path lists live channels only, as before; the check lists all to say why."""
    slack_stub.add_channel("osint-alerts", archived=True)

    with pytest.raises(NotifyError, match="not found"):
        notifier(slack_stub).reconcile(make_alert())

    (listing,) = slack_stub.requests("conversations.list")
    assert listing["response"]["body"]["channels"] == []


# -- scopes ------------------------------------------------------------------------------------


def test_missing_scope_answer_names_the_scope(slack_stub: SlackStub) -> None:
    slack_stub.script(
        [Reply.error("missing_scope", needed="channels:read", provided="chat:write")],
        kind="list",
    )

    token, scope = check(slack_stub)

    assert token.ok and not scope.ok
    assert scope.text.startswith("the token lacks the channels:read scope, needed to call ")
    assert "conversations.list answered missing_scope" in scope.text
    assert "reinstall the app" in scope.text


def test_missing_scope_on_info_names_the_scope(slack_stub: SlackStub) -> None:
    slack_stub.script([Reply.error("missing_scope", needed="channels:read")], kind="info")

    (scope,) = failing(check(slack_stub, channel="C0123ABCD"))

    assert "lacks the channels:read scope" in scope and "conversations.info" in scope


@pytest.mark.parametrize("scoped_stub", [("chat:write", "channels:history")], indirect=True)
def test_token_without_read_scopes_is_refused_by_the_stub_list(scoped_stub: SlackStub) -> None:
    (scope,) = failing(check(scoped_stub))

    assert "one of channels:read, groups:read" in scope


@pytest.mark.parametrize(
    ("scoped_stub", "missing"),
    [
        (("channels:read", "groups:read", "channels:history"), "chat:write"),
        (("chat:write", "channels:read", "groups:read"), "channels:history"),
    ],
    indirect=["scoped_stub"],
)
def test_scopes_slack_lists_are_checked_for_posting_and_reading_back(
    scoped_stub: SlackStub, missing: str
) -> None:
    scoped_stub.add_channel("osint-alerts")

    findings = check(scoped_stub)

    (problem,) = failing(findings)
    assert problem.startswith(f"the token lacks the {missing} scope, needed to ")
    assert findings[-1].ok  # the channel itself is fine


# -- Slack unreachable or failing --------------------------------------------------------------


def test_slack_down_is_a_finding_naming_the_host_not_an_exception(slack_stub: SlackStub) -> None:
    port = closed_port()
    dead = SlackWebApiNotifier(
        "slack", STUB_TOKEN, CHANNEL, api_url=f"http://127.0.0.1:{port}/api/", timeout=2
    )

    (finding,) = dead.verify()

    assert not finding.ok
    assert finding.text.startswith(f"cannot reach the Slack API at 127.0.0.1:{port} (auth.test:")
    assert "could not connect" in finding.text and "Connection refused" in finding.text


@pytest.mark.parametrize("kind", ["auth", "list", "info"])
def test_server_error_on_any_call_is_a_failing_finding(slack_stub: SlackStub, kind: str) -> None:
    slack_stub.add_channel("osint-alerts")
    slack_stub.script([(503, {}, "<html>upstream down</html>")], kind=kind)

    findings = check(slack_stub)

    problem = findings[-1]
    assert not problem.ok and len(failing(findings)) == 1
    assert problem.text.startswith(f"Slack API at 127.0.0.1:{slack_stub.port}: ")
    assert "HTTP 503" in problem.text and "try again" in problem.text


def test_rate_limited_check_says_when_to_try_again(slack_stub: SlackStub) -> None:
    slack_stub.script([(429, {"Retry-After": "7"}, None)], kind="auth")

    (finding,) = check(slack_stub)

    assert not finding.ok and "HTTP 429" in finding.text and "try again in 7 s" in finding.text
    assert len(slack_stub.history) == 1  # no SDK retry behind our back


def test_no_reply_is_a_timeout_finding(slack_stub: SlackStub) -> None:
    slack_stub.script([Reply.ambiguous_stall(3, accept=False)], kind="auth")

    (finding,) = check(slack_stub, timeout=1)

    assert not finding.ok and "auth.test: no reply within 1 s" in finding.text


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["xoxb-CANARY-TOKEN-1", "plainCANARYsecret42"])
def test_token_never_appears_in_any_finding(token: str) -> None:
    texts: list[str] = []
    echo = f"bad token {token} Bearer {token}"
    replies: list[tuple[str, Reply | tuple[object, ...]]] = [
        ("auth", Reply.error("invalid_auth")),
        ("auth", Reply.error(echo)),
        ("auth", Reply.error(echo, status=500)),
        ("auth", (502, {}, f"<html>{token}</html>")),
        ("auth", Reply.ambiguous_reset(accept=False)),
        ("list", Reply.error("missing_scope", needed=echo)),
        ("info", Reply.error(echo)),
    ]
    with SlackStub(token=token, scopes=("channels:read",)) as stub:
        stub.add_channel("osint-alerts", member=False)
        for kind, reply in [(None, None), *replies]:
            if kind is not None and reply is not None:
                stub.script([reply], kind=kind)
            texts += [f.text for f in check(stub, token=token, timeout=2)]
        texts += [f.text for f in check(stub, token=f"{token}-wrong", timeout=2)]
    dead = SlackWebApiNotifier(
        "slack", token, CHANNEL, api_url=f"http://127.0.0.1:{closed_port()}/api/", timeout=2
    )
    texts += [f.text for f in dead.verify()]

    assert len(texts) >= 10
    for text in texts:
        assert "CANARY" not in text, text


# -- the stub agrees with what the check reports -----------------------------------------------


@pytest.mark.parametrize(
    ("member", "archived", "private", "error"),
    [
        (False, False, False, "not_in_channel"),
        (True, True, False, "is_archived"),
        (False, False, True, "channel_not_found"),
    ],
)
def test_stub_refuses_posts_to_declared_channels_as_slack_would(
    slack_stub: SlackStub, member: bool, archived: bool, private: bool, error: str
) -> None:
    slack_stub.add_channel("osint-alerts", member=member, archived=archived, private=private)

    with pytest.raises(NotifyError, match=error) as caught:
        notifier(slack_stub).send(make_alert())

    assert not caught.value.retryable
    assert slack_stub.posts() == []
