"""One delivery attempt over HTTP: the Standard Webhooks headers, signed with the
``standardwebhooks`` package, POSTed with urllib3 to the address the URL was vetted to
(apps.webhooks.targets), with no redirect followed and one total timeout
(WEBHOOK_TIMEOUT_SECONDS). It returns what happened; it never raises for the receiver."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import certifi
import urllib3
from django.conf import settings
from standardwebhooks import Webhook

from apps.webhooks.errors import WebhookUrlNotAllowed
from apps.webhooks.targets import url_vet

USER_AGENT = "Banatie-Webhooks/1.0 (+https://www.standardwebhooks.com)"
# What is kept of a receiver's answer for last_error: enough to debug, never a whole page.
_BODY_KEPT = 300


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None  # None: no HTTP answer (refused target, DNS, connection, timeout)
    error: str  # "" when delivered
    retry_after: float | None = None  # seconds the receiver asked for (429/503 only)

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def signature_header(secrets: list[str], *, event_id: str, sent_at: datetime, body: str) -> str:
    """``webhook-signature``: one ``v1,<base64>`` per secret, space-separated (the spec's way
    of carrying a new and a previous secret during a rotation)."""
    return " ".join(Webhook(secret).sign(event_id, sent_at, body) for secret in secrets)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), capped at a day."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), 86400.0)


def _pool(target_scheme: str, address: str, port: int, host: str) -> urllib3.HTTPConnectionPool:
    # Connect to the vetted address; for https the certificate must still match the name.
    timeout = urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_SECONDS)
    if target_scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, maxsize=1, cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(), server_hostname=host, assert_hostname=host,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)


def attempt_send(*, url: str, secrets: list[str], event_id: str, body: str) -> AttemptResult:
    """POST ``body`` to ``url`` once, signed with each of ``secrets``."""
    try:
        target = url_vet(url)  # again at every attempt: the name may resolve elsewhere now
    except WebhookUrlNotAllowed as exc:
        return AttemptResult(None, f"refused: {exc.message}")
    sent_at = datetime.now(timezone.utc)
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature_header(secrets, event_id=event_id, sent_at=sent_at, body=body),
    }
    pool = _pool(target.scheme, target.address, target.port, target.host)
    try:
        response = pool.urlopen("POST", target.path, body=body.encode(), headers=headers, redirect=False,
                                retries=False, assert_same_host=False, preload_content=False)
        try:
            answer = response.read(_BODY_KEPT, decode_content=False)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return AttemptResult(None, f"{type(exc).__name__}: {exc}"[:1000])
    finally:
        pool.close()
    status = response.status
    if 200 <= status < 300:
        return AttemptResult(status, "")
    text = answer.decode("utf-8", "replace").strip()
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed (Location: {response.headers.get('Location', '-')})"
    else:
        error = f"HTTP {status}" + (f": {text}" if text else "")
    retry_after = _retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    return AttemptResult(status, error[:1000], retry_after)
