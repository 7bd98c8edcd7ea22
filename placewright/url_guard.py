"""One guard for every URL fetched on a user's behalf: public addresses only, and deadlines that hold.

A URL a user hands in (a product image, a webhook URL) must not reach into the network Placewright
runs in: its host is resolved once, every answer is checked (:func:`check_address`: loopback,
private, link-local including the 169.254.169.254 metadata service, CGNAT, multicast, reserved, IPv6
ULA and the IPv4-in-IPv6 forms of these are refused), and the request goes to the very address that
was checked, with the original ``Host`` header and, for https, the original host name as TLS server
name and for certificate verification (so a second DNS answer cannot swap the address). Redirects
are followed by hand, each hop checked again, or not at all (:func:`guarded_request` with
``follow_redirects=False``, as webhook deliveries use it: the redirect is then the answer). The
operator's allowlist (``limits.allowed_hosts``: host names, IP addresses, CIDR networks) opens hosts
such as an internal object store.

Deadlines: every connect and read waits at most the time left, the deadline is checked after every
piece of the body, and a watchdog shuts the connection's socket when the deadline passes, so a server
trickling bytes cannot hold a download past its limit.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, Any

from placewright.errors import InvalidInput
from placewright.validation import one_line, shown

if TYPE_CHECKING:
    import httpx

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Redirects followed before giving up, and the statuses that are redirects.
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Well-known ranges ipaddress does not name on its own.
CGNAT_NETWORK = ip_network("100.64.0.0/10")
NAT64_NETWORK = ip_network("64:ff9b::/96")
METADATA_ADDRESS = ip_address("169.254.169.254")
# A host name in the allowlist: letters, digits, '-', '_' and dots (IDNA names in their xn-- form too).
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
ALLOWLIST_HINT = "limits.allowed_hosts can allow it"


class UrlRefused(InvalidInput):
    """A URL that the guard does not fetch: its scheme, its address, or too many redirects."""


class FetchTimedOut(InvalidInput):
    """A guarded fetch that ran past its deadline."""


@dataclass(frozen=True)
class Allowlist:
    """The operator's exceptions to the guard: host names (exact, case-insensitive) and IP networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """An allowlist from ``limits.allowed_hosts`` entries.

        Raises:
            ValueError: one line naming the first entry that is not a host name, IP address or CIDR network.
        """
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            value = normalise_allowlist_entry(entry)
            try:
                networks.append(ip_network(value, strict=False))
            except ValueError:
                hosts.add(value)
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def of(cls, allowlist: Allowlist | Iterable[str]) -> Allowlist:
        """``allowlist`` itself, or parsed from its entries."""
        return allowlist if isinstance(allowlist, Allowlist) else cls.parse(allowlist)

    def allows_host(self, host: str) -> bool:
        """Whether the host name is listed (every address it resolves to is then allowed)."""
        return _host_key(host) in self.hosts

    def allows_address(self, ip: IPAddress) -> bool:
        """Whether the address lies in a listed IP address or network."""
        return any(ip.version == network.version and ip in network for network in self.networks)


def normalise_allowlist_entry(entry: str) -> str:
    """An allowlist entry in the form it is compared in (lower case, no trailing dot, no brackets).

    Raises:
        ValueError: the entry is not a host name, an IP address or a CIDR network.
    """
    value = _host_key(str(entry).strip().strip("[]"))
    try:
        ip_network(value, strict=False)
        return value
    except ValueError:
        pass
    try:
        ascii_name = value.encode("idna").decode("ascii") if not value.isascii() else value
    except UnicodeError:
        ascii_name = ""
    if not _HOST_NAME.match(ascii_name) or "/" in value:
        raise ValueError(f"{shown(entry)} is not a host name, IP address or CIDR network")
    return ascii_name


def check_address(ip: IPAddress | str, allowlist: Allowlist | Iterable[str] = ()) -> str | None:
    """Why Placewright must not connect to ``ip`` on a user's behalf, or None when it may.

    Refused unless the allowlist opens them: addresses that are not globally reachable (loopback,
    private, link-local, CGNAT 100.64/10, reserved, unspecified, IPv6 unique-local and site-local),
    multicast, and IPv6 addresses carrying such an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
    NAT64 ``64:ff9b::a.b.c.d``, IPv4-compatible ``::a.b.c.d``, 6to4 and Teredo).

    Args:
        ip: an address object or its text.
        allowlist: an :class:`Allowlist`, or ``limits.allowed_hosts`` entries.

    Returns:
        One line such as ``"10.0.0.1 is a private address"``, or None.
    """
    address = ip_address(ip) if isinstance(ip, str) else ip
    problem = _problem(address, Allowlist.of(allowlist))
    return None if problem is None else f"{address} is {problem}"


def _problem(address: IPAddress, allowed: Allowlist) -> str | None:
    """What ``address`` is when it must not be connected to (``"a private address"``), else None."""
    if allowed.allows_address(address):
        return None
    if isinstance(address, IPv6Address):
        # Forms that are the IPv4 address itself: judged as that address.
        same = address.ipv4_mapped
        if same is None and address in NAT64_NETWORK:
            same = IPv4Address(int(address) & 0xFFFFFFFF)
        if same is not None:
            problem = _problem(same, allowed)
            return None if problem is None else f"the IPv4 address {same}, {problem}"
    problem = _category(address)
    if problem is not None:
        return problem
    for carried in _carried_ipv4(address):
        problem = _category(carried)
        if problem is not None and not allowed.allows_address(carried):
            return f"an address leading to {carried}, {problem}"
    return None


def resolve_checked(
    host: str, port: int, allowlist: Allowlist | Iterable[str] = (), *, timeout_s: float | None = None
) -> list[IPAddress]:
    """The addresses of ``host``, each allowed by :func:`check_address`.

    An IP literal is checked without a DNS query. A host name is resolved with ``socket.getaddrinfo``
    and refused when ANY answer is refused (a name resolving to a private address), unless the
    allowlist names the host itself or the answers' networks.

    Args:
        host: a host name (ASCII, IDNA-encoded) or an IP address (IPv6 with or without brackets).
        port: the port the connection will use.
        allowlist: an :class:`Allowlist`, or ``limits.allowed_hosts`` entries.
        timeout_s: give up resolving after this long (None: the resolver's own limits).

    Returns:
        The addresses in the resolver's order, without repeats.

    Raises:
        UrlRefused: one line: an address that is not allowed, or a host that does not resolve.
        FetchTimedOut: resolving took longer than ``timeout_s``.
    """
    allowed = Allowlist.of(allowlist)
    literal = _ip_literal(host)
    if literal is not None:
        reason = check_address(literal, allowed)
        if reason is not None:
            raise UrlRefused(f"refused: {reason} ({ALLOWLIST_HINT})")
        return [literal]
    answers = _getaddrinfo(host, port, timeout_s)
    addresses = list(dict.fromkeys(_ip_literal(str(info[4][0])) for info in answers))
    found = [address for address in addresses if address is not None]
    if not found:
        raise UrlRefused(f"cannot resolve host {host}: no addresses")
    if allowed.allows_host(host):
        return found
    for address in found:
        problem = _problem(address, allowed)
        if problem is not None:
            raise UrlRefused(f"refused: {host} resolves to {address}, {problem} ({ALLOWLIST_HINT})")
    return found


@dataclass
class GuardedResponse:
    """The final response of :func:`guarded_request` (or :func:`guarded_get`), its body not read yet.

    Attributes:
        url: the URL that answered, with its host name (after redirects).
        address: the address that was connected to.
        response: the streaming httpx response (its ``url`` names the address, not the host).
        redirects: the URLs redirected to, in order.
    """

    url: str
    address: IPAddress
    response: httpx.Response
    redirects: list[str] = field(default_factory=list)
    _watchdog: _Watchdog | None = None

    def iter_bytes(self) -> Iterator[bytes]:
        """The body, piece by piece as it arrives (decoded), the deadline checked after each piece.

        Raises:
            FetchTimedOut: the deadline passed.
            httpx.HTTPError: a network or protocol failure.
        """
        watchdog = self._watchdog
        try:
            for piece in self.response.iter_bytes():
                if watchdog is not None and watchdog.expired():
                    raise FetchTimedOut("timed out")
                yield piece
        except Exception as exc:
            if watchdog is not None and watchdog.expired() and not isinstance(exc, FetchTimedOut):
                raise FetchTimedOut("timed out") from None
            raise
        if watchdog is not None and watchdog.fired:  # a body ending at close may have been cut short
            raise FetchTimedOut("timed out")


@contextmanager
def guarded_request(
    method: str,
    url: str,
    *,
    allowlist: Allowlist | Iterable[str],
    deadline: float,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    follow_redirects: bool = True,
    max_redirects: int = MAX_REDIRECTS,
) -> Iterator[GuardedResponse]:
    """Send ``method`` to ``url`` at checked addresses only, following redirects by hand, within ``deadline``.

    Each hop (the URL, then every redirect target) must be http(s); its host is resolved and checked
    (:func:`resolve_checked`) and the request goes to a checked address, with the URL's ``Host``
    header and, for https, its host name as TLS server name and for certificate verification.
    Environment proxies and ``.netrc`` are not used (a proxy would connect by name); ``SSL_CERT_FILE``
    and ``SSL_CERT_DIR`` still are.

    Redirects are followed as browsers do: 307 and 308 repeat the method and body; 301, 302 and 303
    turn a request other than GET or HEAD into a GET without a body (and without the body's
    ``Content-Type``).

    Args:
        method: the HTTP method (``"GET"``, ``"POST"``...).
        url: an http or https URL.
        allowlist: an :class:`Allowlist`, or ``limits.allowed_hosts`` entries.
        deadline: ``time.monotonic()`` time by which everything, the body included, must be done.
        headers: extra request headers.
        content: the request body.
        follow_redirects: False: a redirect is not followed but yielded as the response.
        max_redirects: refuse longer redirect chains.

    Yields:
        The final response (with ``follow_redirects``, not a redirect), streaming; read it with
        :meth:`GuardedResponse.iter_bytes`.

    Raises:
        UrlRefused: a hop that is not http(s), resolves to a refused address, or too many redirects.
        FetchTimedOut: the deadline passed.
        httpx.HTTPError: a connection, TLS or protocol failure.
    """
    import httpx

    allowed = Allowlist.of(allowlist)
    tls = httpx.create_ssl_context(trust_env=True)
    current = httpx.URL(url)
    method = method.upper()
    sent_headers = dict(headers or {})
    redirects: list[str] = []
    while True:
        _check_scheme(current)
        remaining = _remaining(deadline)
        port = current.port or (443 if current.scheme == "https" else 80)
        addresses = resolve_checked(current.raw_host.decode("ascii"), port, allowed, timeout_s=remaining)
        watchdog = _Watchdog(deadline, addresses)
        try:
            with httpx.Client(trust_env=False, verify=tls, follow_redirects=False) as client:
                address, response = _send(client, method, current, addresses, sent_headers, content, watchdog, deadline)
                try:
                    location = response.headers.get("location")
                    if follow_redirects and response.status_code in REDIRECT_STATUSES and location:
                        if len(redirects) >= max_redirects:
                            raise UrlRefused(f"more than {max_redirects} redirects")
                        current = current.join(location)
                        redirects.append(str(current))
                        if response.status_code in (301, 302, 303) and method not in ("GET", "HEAD"):
                            method, content = "GET", None
                            sent_headers = {
                                name: value
                                for name, value in sent_headers.items()
                                if name.lower() not in ("content-type", "content-length", "transfer-encoding")
                            }
                        continue
                    yield GuardedResponse(str(current), address, response, redirects, watchdog)
                    return
                finally:
                    response.close()
        except httpx.HTTPError:
            if watchdog.expired():
                raise FetchTimedOut("timed out") from None
            raise
        finally:
            watchdog.cancel()


@contextmanager
def guarded_get(
    url: str,
    *,
    allowlist: Allowlist | Iterable[str],
    deadline: float,
    headers: Mapping[str, str] | None = None,
    max_redirects: int = MAX_REDIRECTS,
) -> Iterator[GuardedResponse]:
    """GET ``url`` through :func:`guarded_request`, following redirects (each hop checked).

    Yields:
        The final (non-redirect) response, streaming; read it with :meth:`GuardedResponse.iter_bytes`.

    Raises:
        UrlRefused: a hop that is not http(s), resolves to a refused address, or too many redirects.
        FetchTimedOut: the deadline passed.
        httpx.HTTPError: a connection, TLS or protocol failure.
    """
    with guarded_request(
        "GET", url, allowlist=allowlist, deadline=deadline, headers=headers, max_redirects=max_redirects
    ) as response:
        yield response


def _send(
    client: httpx.Client,
    method: str,
    url: httpx.URL,
    addresses: list[IPAddress],
    headers: Mapping[str, str],
    content: bytes | None,
    watchdog: _Watchdog,
    deadline: float,
) -> tuple[IPAddress, httpx.Response]:
    """Send the request to the first of ``addresses`` that accepts a connection."""
    import httpx

    host_header = httpx.Request("GET", url).headers["host"]
    failure: httpx.ConnectError | None = None
    for address in addresses:
        remaining = _remaining(deadline)
        request = client.build_request(
            method,
            url.copy_with(host=str(address)),
            headers={**headers, "Host": host_header},
            content=content,
            timeout=httpx.Timeout(remaining),
            extensions={"sni_hostname": url.raw_host.decode("ascii"), "trace": watchdog.trace},
        )
        try:
            return address, client.send(request, stream=True)
        except httpx.ConnectError as exc:
            failure = exc
    assert failure is not None
    raise failure


class _Watchdog:
    """Shuts a request's sockets when the deadline passes, so that no read blocks past it.

    Also the last check that a connection goes to one of the checked addresses: it sees every connect
    through httpcore's ``trace`` request extension.
    """

    def __init__(self, deadline: float, addresses: list[IPAddress]) -> None:
        self.deadline = deadline
        self.fired = False
        self._addresses = {str(address) for address in addresses}
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.fired or time.monotonic() >= self.deadline

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace callback: check connects, remember sockets."""
        if event == "connection.connect_tcp.started" and str(info.get("host")) not in self._addresses:
            raise UrlRefused(f"refused: connecting to {info.get('host')}, which was not checked")
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.append(sock)
                    if self.fired:
                        _shut(sock)

    def cancel(self) -> None:
        """Stop the timer (the request is over)."""
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut a socket down for reading and writing; a blocked read returns at once. Closed ones are skipped."""
    # The plain socket method: ssl.SSLSocket.shutdown would also drop its TLS state under the reader.
    with suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _check_scheme(url: httpx.URL) -> None:
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise UrlRefused(f"refused: {shown(str(url))} is not an http(s) URL")


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchTimedOut("timed out")
    return remaining


def _host_key(host: str) -> str:
    return host.strip().lower().rstrip(".")


def _ip_literal(host: str) -> IPAddress | None:
    """``host`` as an address when it is one (``[v6]`` brackets and ``%zone`` suffixes allowed)."""
    try:
        return ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _getaddrinfo(host: str, port: int, timeout_s: float | None) -> list[Any]:
    """``socket.getaddrinfo`` for TCP, given up on after ``timeout_s`` (the lookup thread is left to finish)."""

    def lookup() -> list[Any]:
        try:
            return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UrlRefused(f"cannot resolve host {host}: {one_line(str(exc)) or type(exc).__name__}") from None

    if timeout_s is None:
        return lookup()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answers"] = lookup()
        except UrlRefused as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="placewright-resolve", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise FetchTimedOut("timed out")
    if "error" in outcome:
        raise outcome["error"]
    return list(outcome["answers"])


def _category(address: IPAddress) -> str | None:
    """What kind of address ``address`` is when it is not one to connect to, else None."""
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address == METADATA_ADDRESS:
        return "the link-local cloud metadata address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, IPv4Address) and address in CGNAT_NETWORK:
        return "a shared (CGNAT) address"
    if isinstance(address, IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a globally reachable address"
    return None


def _carried_ipv4(address: IPAddress) -> list[IPv4Address]:
    """IPv4 addresses an IPv6 address leads to: IPv4-compatible, 6to4, Teredo (server and client)."""
    if not isinstance(address, IPv6Address):
        return []
    carried: list[IPv4Address] = []
    if int(address) >> 32 == 0:  # ::a.b.c.d (IPv4-compatible; deprecated)
        carried.append(IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        carried.append(address.sixtofour)
    if address.teredo is not None:
        carried.extend(address.teredo)
    return carried


__all__ = [
    "MAX_REDIRECTS",
    "Allowlist",
    "FetchTimedOut",
    "GuardedResponse",
    "UrlRefused",
    "check_address",
    "guarded_get",
    "guarded_request",
    "normalise_allowlist_entry",
    "resolve_checked",
]
