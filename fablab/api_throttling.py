"""Rate limits of the API: requests per organization, and failed key checks per source address.

An organization's keys share one allowance (API_RATE_LIMIT): a second key does not double it. Wrong keys
(malformed, unknown, revoked, expired) count against the address that sent them (API_AUTH_FAILURE_LIMIT);
past the limit that address gets 429 for every key, right or wrong, until the window has passed, so a
guesser learns nothing more from it. The address is the client's own behind TRUSTED_PROXY_COUNT proxies.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.errors import Throttled
from ninja.throttling import AuthRateThrottle, SimpleRateThrottle

from fablab.security import client_ip

FAILURES_KEY = "api-key-failures:%s:%d"


class OrganizationRateThrottle(AuthRateThrottle):
    """AuthRateThrottle counted per organization of the request's API key, not per key."""

    scope = "organization"

    def get_cache_key(self, request: HttpRequest) -> str:
        api_key = getattr(request, "auth", None)
        organization_id = getattr(api_key, "organization_id", None)
        if organization_id is None:
            return super().get_cache_key(request)
        return self.cache_format % {"scope": self.scope, "ident": f"org-{organization_id}"}


class KeyChecksThrottled(Throttled):
    """Too many wrong API keys from this address (answered 429 with this detail)."""

    def __init__(self, wait: int):
        super().__init__(wait=wait)
        self.detail = _("Too many requests with a wrong API key came from this address; retry in %(seconds)d s.") % {
            "seconds": wait}


def _failure_window() -> tuple[int, int]:
    """API_AUTH_FAILURE_LIMIT as (wrong keys, seconds); read on every call, so a changed setting applies."""
    throttle = SimpleRateThrottle(settings.API_AUTH_FAILURE_LIMIT)
    return throttle.num_requests, throttle.duration


def _failures_key(request: HttpRequest, seconds: int) -> tuple[str, int]:
    """This address's counter for the current fixed window, and the seconds left in that window."""
    now = int(time.time())
    window = now // seconds
    address = hashlib.sha256(client_ip(request).encode()).hexdigest()[:32]
    return FAILURES_KEY % (address, window), seconds - now % seconds


def refuse_if_too_many_failures(request: HttpRequest) -> None:
    """Raise KeyChecksThrottled when this address has sent API_AUTH_FAILURE_LIMIT wrong keys in this window."""
    limit, seconds = _failure_window()
    key, left = _failures_key(request, seconds)
    if cache.get(key, 0) >= limit:
        raise KeyChecksThrottled(wait=left)


def count_failure(request: HttpRequest) -> None:
    """One more wrong key from this address."""
    _limit, seconds = _failure_window()
    key, left = _failures_key(request, seconds)
    if not cache.add(key, 1, timeout=left + 1):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=left + 1)
