"""Where a webhook may be sent (SSRF protection): an https URL whose host resolves only to
public internet addresses. Checked when an endpoint is registered and again at every
attempt, which then connects to the very address it vetted (a DNS answer that changes
between the check and the connection, "DNS rebinding", cannot reach an internal service).

WEBHOOK_ALLOW_PRIVATE_TARGETS=true (local development, tests) allows http and every
address, and skips the resolution at registration."""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from apps.webhooks.errors import WebhookUrlNotAllowed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# In the order they are named: the first class an address falls in is the reason given.
_CLASSES = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("reserved", lambda ip: ip.is_reserved),  # before private: Python counts 240/4 as both
    ("private", lambda ip: ip.is_private),
    # Shared (100.64/10), documentation, benchmarking and other special-purpose ranges.
    ("not globally routable", lambda ip: not ip.is_global),
)


@dataclass(frozen=True)
class Target:
    """A vetted URL: connect to ``address`` and send ``host`` as the Host header (and, for
    https, as the TLS server name the certificate must match)."""

    scheme: str
    host: str  # the name (or IP literal) as written in the URL, without brackets
    port: int
    path: str  # path and query, what the request line carries
    address: str  # the IP address to connect to

    @property
    def host_header(self) -> str:
        name = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return name if self.port == default else f"{name}:{self.port}"


def address_class(ip: Address) -> str | None:
    """Why a webhook may not go to ``ip`` (e.g. "loopback"), or None for a public address.
    An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is judged as the IPv4 address it maps."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    if mapped is not None:
        reason = address_class(mapped)
        return f"IPv4-mapped {reason}" if reason else None
    for name, test in _CLASSES:
        if test(ip):
            return name
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (tests replace this to play DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _refuse(message: str, **details: str) -> WebhookUrlNotAllowed:
    return WebhookUrlNotAllowed(message, field="url", details=details)


def url_parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of a URL a webhook may be registered with; raises
    WebhookUrlNotAllowed naming what is wrong (scheme, missing host, credentials)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _refuse(f"The URL could not be parsed: {exc}.", reason="malformed") from None
    allowed = ("https", "http") if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS else ("https",)
    if parts.scheme not in allowed:
        raise _refuse(f"The URL's scheme is {parts.scheme or 'missing'}; webhooks are sent only to "
                      f"{' or '.join(s + '://' for s in allowed)} URLs.", reason="scheme", scheme=parts.scheme)
    if not parts.hostname:
        raise _refuse("The URL has no host.", reason="malformed")
    if parts.username is not None or parts.password is not None:
        raise _refuse("The URL holds credentials (user:password@); deliveries are authenticated by their "
                      "signature instead.", reason="credentials")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def url_vet(url: str) -> Target:
    """The URL as a Target, its host resolved and every address checked: raises
    WebhookUrlNotAllowed naming the scheme, or the address and its class (``loopback``,
    ``private``, ``link-local``, ...), or a host that does not resolve. Connecting to the
    first address is then safe."""
    scheme, host, port, path = url_parse(url)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            raise _refuse(f"The host {host!r} does not resolve: {exc}.", reason="unresolvable", host=host) from None
    if not addresses:
        raise _refuse(f"The host {host!r} does not resolve.", reason="unresolvable", host=host)
    if not settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        for address in addresses:
            reason = address_class(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                via = "" if address == host else f" resolves to {address}, which"
                raise _refuse(f"The host {host!r}{via} is a {reason} address; webhooks are sent only to public "
                              "internet addresses.", reason="address", address=address, addressClass=reason)
    return Target(scheme=scheme, host=host, port=port, path=path, address=addresses[0])


def url_check_at_registration(url: str) -> None:
    """Refuse a URL no delivery could be sent to (WebhookUrlNotAllowed). With private targets
    allowed only the URL itself is checked: a local receiver need not be up yet."""
    if settings.WEBHOOK_ALLOW_PRIVATE_TARGETS:
        url_parse(url)
    else:
        url_vet(url)
