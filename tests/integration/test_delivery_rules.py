"""The pure parts of delivery, from tables: signatures (checked against the reference library),
what an HTTP answer means, backoff and Retry-After. No database, no network."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from exposure.delivery.sender import DeliveryReport, EndpointState
from exposure.delivery.signing import (
    BACKOFF_CAP_SECONDS,
    MIN_RETRY_SECONDS,
    Outcome,
    backoff_delay,
    classify,
    retry_after_delay,
    status_error,
    verdict,
    webhook_headers,
)
from exposure.secret import Secret
from tests.integration.receiver import NEW_SECRET, OLD_SECRET, OTHER_SECRET


def _key(whsec: str) -> Secret[bytes]:
    return Secret(base64.b64decode(whsec.removeprefix("whsec_")))


def test_signature_verifies_with_the_reference_library_for_every_key() -> None:
    body = '{"type":"exposure.notify","data":{"reason":"漏えい"}}'.encode()
    now = int(datetime.now(UTC).timestamp())
    headers = webhook_headers("msg_abc", now, body, [_key(NEW_SECRET), _key(OLD_SECRET)])
    assert headers["webhook-id"] == "msg_abc" and headers["webhook-timestamp"] == str(now)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (NEW_SECRET, OLD_SECRET):
        assert Webhook(secret).verify(body, headers)["data"]["reason"] == "漏えい"
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(body, headers)
    with pytest.raises(WebhookVerificationError):  # the body is covered by the signature
        Webhook(NEW_SECRET).verify(body.replace(b"notify", b"nothing"), headers)
    with pytest.raises(ValueError, match="signing key"):
        webhook_headers("msg_abc", now, body, [])


@pytest.mark.parametrize(
    ("status", "outcome", "error"),
    [
        (200, Outcome.DELIVERED, None),
        (204, Outcome.DELIVERED, None),
        (299, Outcome.DELIVERED, None),
        (410, Outcome.DISABLED, "HTTP 410 Gone: endpoint disabled"),
        (301, Outcome.RETRY, "HTTP 301: redirect not followed; configure the final URL"),
        (400, Outcome.RETRY, "HTTP 400"),
        (401, Outcome.RETRY, "HTTP 401"),
        (404, Outcome.RETRY, "HTTP 404"),
        (422, Outcome.RETRY, "HTTP 422"),
        (429, Outcome.RETRY, "HTTP 429"),
        (500, Outcome.RETRY, "HTTP 500"),
        (503, Outcome.RETRY, "HTTP 503"),
        (None, Outcome.RETRY, None),
    ],
)
def test_what_an_answer_means(status: int | None, outcome: Outcome, error: str | None) -> None:
    assert classify(status) is outcome
    assert status_error(status) == error


class _Extreme(random.Random):
    """Always draws the top (or the bottom) of the jitter range."""

    def __init__(self, top: bool) -> None:
        super().__init__()
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 30.0), (2, 60.0), (3, 120.0), (10, 15360.0), (11, BACKOFF_CAP_SECONDS), (500, 21600.0)],
)
def test_backoff_doubles_with_full_jitter_and_a_cap(attempt: int, ceiling: float) -> None:
    assert backoff_delay(attempt, rng=_Extreme(top=True)) == ceiling
    assert backoff_delay(attempt, rng=_Extreme(top=False)) == MIN_RETRY_SECONDS
    draws = [backoff_delay(attempt) for _ in range(200)]
    assert all(MIN_RETRY_SECONDS <= d <= ceiling for d in draws)
    assert len(set(draws)) > 150  # jittered, not a fixed schedule


NOW = datetime(2026, 5, 12, 1, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Tue, 12 May 2026 03:02:03 GMT", 7200.0),
        ("Tue, 12 May 2026 00:00:00 GMT", 0.0),  # in the past: now
        ("999999999", BACKOFF_CAP_SECONDS),
        ("Wed, 12 May 2027 01:02:03 GMT", BACKOFF_CAP_SECONDS),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after_delay(header, NOW) == seconds


def test_reports_add_up() -> None:
    one = DeliveryReport(endpoint=EndpointState.OK, claimed=3, delivered=2, retried=1)
    two = DeliveryReport(endpoint=EndpointState.DISABLED, claimed=2, disabled=1, released=1)
    total = one + two
    assert (total.claimed, total.delivered, total.retried, total.disabled, total.released) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert total.endpoint is EndpointState.DISABLED
    assert total.as_dict()["endpoint"] == "disabled"


@pytest.mark.parametrize(
    ("status", "ends_in", "retry_after", "outcome", "due_in"),
    [
        (200, 3600, None, Outcome.DELIVERED, (0, 0)),
        (410, 3600, None, Outcome.DISABLED, (0, 0)),  # due at once, once re-enabled
        (503, 3600, None, Outcome.RETRY, (MIN_RETRY_SECONDS, 30)),  # first backoff: <= 30 s
        (None, 3600, None, Outcome.RETRY, (MIN_RETRY_SECONDS, 30)),  # timeout, refused, ...
        (429, 3600, 600.0, Outcome.RETRY, (600, 600)),  # Retry-After beats a shorter backoff
        (503, 5, 600.0, Outcome.RETRY, (5, 5)),  # the last try lands on the window's end
        (503, 0, None, Outcome.DEAD, (0, 0)),  # the window is over: dead-lettered
        (401, -60, None, Outcome.DEAD, (0, 0)),
        (200, -60, None, Outcome.DELIVERED, (0, 0)),  # late success is still success
    ],
)
def test_verdict(
    status: int | None,
    ends_in: float,
    retry_after: float | None,
    outcome: Outcome,
    due_in: tuple[float, float],
) -> None:
    ends = NOW + timedelta(seconds=ends_in)
    got, due = verdict(status, attempt=1, now=NOW, window_ends=ends, retry_after=retry_after)
    assert got is outcome
    assert due_in[0] <= (due - NOW).total_seconds() <= due_in[1]
