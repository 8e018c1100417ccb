"""Which webhook URLs the service may call (server-side request forgery): checked at registration and before every
attempt, since DNS may change between the two.

In production a URL must be `https` and every address its host resolves to must be global (not private, loopback,
link-local, shared, reserved, multicast...), unless an operator allow-listed the host (WEBHOOK_ALLOWED_HOSTS).
Elsewhere (the local stack, the tests) any http(s) URL goes, loopback included.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from services.referral.settings import ReferralSettings


class RefusedUrl(Exception):
    """Why a URL may not be called."""


def parse(url: str, settings: ReferralSettings) -> tuple[str, int]:
    """The host and port of a URL the scheme rules admit; RefusedUrl otherwise."""
    parts = urlsplit(url)
    schemes = {"https"} if settings.environment == "production" else {"https", "http"}
    if parts.scheme not in schemes:
        raise RefusedUrl("the URL must use https" if settings.environment == "production"
                         else "the URL must use http or https")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise RefusedUrl("the URL needs a host and no user information")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise RefusedUrl("the URL's port is not valid") from exc
    return parts.hostname, port


async def check(url: str, settings: ReferralSettings) -> None:
    """RefusedUrl unless the URL may be called now (its host resolved afresh)."""
    host, port = parse(url, settings)
    if settings.environment != "production" or host.lower() in settings.webhook_allowed_hosts:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedUrl(f"the host {host} does not resolve") from exc
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not address.is_global:
            raise RefusedUrl(f"the host {host} resolves to {address}, which is not a public address")
