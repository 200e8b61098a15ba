"""Where a server may listen and what it answers to: loopback checks, the port checked before a
server starts, free ports, and the host names a server answers to."""

from __future__ import annotations

import errno
import ipaddress
import socket

from harness.errors import HarnessError

LOCALHOST = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_port(host: str, port: int) -> None:
    """One line, before anything starts, if `host:port` cannot be listened on."""
    if not 0 < port < 65536:
        raise HarnessError(f"--port: {port} is not a port number (1-65535)")
    try:
        family, _, _, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise HarnessError(f"--host: {host!r} is not an address of this machine") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is free
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise HarnessError(f"port {port} on {host} is already in use (another server?): pick another "
                                   "with --port N, or stop that one") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise HarnessError(f"--host: {host!r} is not an address of this machine") from None
            raise HarnessError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _interface_addresses() -> list[str]:
    """This machine's IPv4 addresses, one per network interface (Linux)."""
    import fcntl
    import struct

    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:  # SIOCGIFADDR
                packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
            found.append(socket.inet_ntoa(packed[20:24]))
    return found


def host_names(host: str, extra: list[str]) -> list[str]:
    """The Host headers a server bound to `host` answers to: its own names and addresses (so a
    LAN client may use the machine's name), plus `extra`; any other name is refused, which is
    what defeats DNS rebinding."""
    names: list[str] = []
    if host in ("0.0.0.0", "::", "[::]", ""):
        names += [*LOCALHOST, *_interface_addresses()]
    elif is_loopback(host):
        names += LOCALHOST
    else:
        names.append(f"[{host}]" if ":" in host else host)
    if not is_loopback(host):
        names += [n for n in (socket.gethostname(), socket.getfqdn()) if n not in LOCALHOST]
    names += [n.strip() for item in extra for n in item.split(",") if n.strip()]
    return list(dict.fromkeys(names))
