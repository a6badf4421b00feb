"""Which pages may open the app's websockets: the site's own origin (or a listed one).

Browsers send ``Origin`` on every websocket handshake and attach the site's
cookies whatever page opens the socket, so a page elsewhere could otherwise
chat, moderate or stream with a logged-in user's rights. Channels'
``AllowedHostsOriginValidator`` compares host names only: a page on another
port or scheme of an allowed host (another app on ``:8080``, plain ``http://``)
passes it. Both consumers therefore check here themselves, whatever the site's
``asgi.py`` wraps them in.

The rule is Django's CSRF origin check (``CsrfViewMiddleware``): the origin's
scheme, host and port must be the request's own (``https`` when the socket is
``wss`` or ``SECURE_PROXY_SSL_HEADER`` says so), or an entry of
``CSRF_TRUSTED_ORIGINS`` (``https://*.example.com`` wildcards allowed).
Missing and ``null`` origins are refused.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope, name):
    """The first ``name`` header (lower-case str) of an ASGI scope, as text, or None."""
    wanted = name.encode("latin-1")
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def request_is_secure(scope):
    """Whether the handshake came over TLS (``wss``, or a proxy's header as Django reads it)."""
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, secure_value = proxy
        # Django's META name ("HTTP_X_FORWARDED_PROTO") as the raw header ("x-forwarded-proto").
        header = name.removeprefix("HTTP_").replace("_", "-").lower()
        value = _header(scope, header)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return False


def _allowed_hosts():
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]  # what Django allows in DEBUG
    return hosts


def _origin_tuple(scheme, netloc):
    """``(scheme, host, port)`` with the scheme's default port filled in; None if malformed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return (scheme, parts.hostname.lower(), port or DEFAULT_PORTS.get(scheme))


def is_same_origin(scope):
    """True when the handshake's ``Origin`` is this site's own, or in ``CSRF_TRUSTED_ORIGINS``.

    Same origin means same scheme, host and port as the request (RFC 6454);
    the request's ``Host`` must itself be in ``ALLOWED_HOSTS``.
    """
    origin = _header(scope, "origin")
    host = _header(scope, "host")
    if not origin or origin == "null" or not host:
        return False
    try:
        parsed = urlsplit(origin)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    if parsed.scheme not in DEFAULT_PORTS or not parsed.netloc:
        return False
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, _allowed_hosts()):
        return False
    scheme = "https" if request_is_secure(scope) else "http"
    own = _origin_tuple(scheme, host)
    if own is not None and _origin_tuple(parsed.scheme, parsed.netloc) == own:
        return True
    return _is_trusted(origin, parsed)


def _is_trusted(origin, parsed):
    for trusted in getattr(settings, "CSRF_TRUSTED_ORIGINS", []):
        if "*" not in trusted:
            if origin.lower() == trusted.lower():
                return True
            continue
        pattern = urlsplit(trusted)
        if pattern.scheme == parsed.scheme and is_same_domain(
            parsed.netloc.lower(), pattern.netloc.lstrip("*").lower()
        ):
            return True
    return False
