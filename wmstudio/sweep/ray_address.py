"""A Ray cluster address that does not answer fails within ``CONNECT_TIMEOUT_S``, not after Ray's retries.

``ray.init(address=...)`` retries an unreachable cluster for minutes (about 150 s for a closed port)
before it gives up. ``check_ray_address`` opens one TCP connection to the cluster's GCS port first
(``auto``: the address Ray would use, from ``RAY_ADDRESS`` or the last ``ray start`` on this machine)
and raises a ``ConfigError`` naming the address, the reason and the timeout when it is refused or
does not answer within the timeout (the name lookup included). Used by ``wmstudio sweep --address``,
``wmstudio landscape --ray ADDRESS`` and every other start of a connection to a cluster.
"""

from __future__ import annotations

import socket
import threading

from wmstudio.errors import ConfigError

CONNECT_TIMEOUT_S = 30.0


def _resolve(address: str) -> str:
    """``host:port`` of the cluster's GCS for ``address`` ("" when Ray would report the address itself)."""
    if address.startswith("ray://"):
        return address[len("ray://"):]
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            return canonicalize_bootstrap_address(address) or ""
        except Exception:  # noqa: BLE001 - no cluster recorded, or another Ray version: Ray's own error follows
            return ""
    return address


def _connect(host: str, port: int, timeout: float, outcome: list[BaseException | None]) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            outcome.append(None)
    except BaseException as exc:  # noqa: BLE001 - reported by the caller
        outcome.append(exc)


def check_ray_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a ``ConfigError`` when the Ray cluster at ``address`` does not accept a connection within ``timeout``."""
    target = _resolve(address.strip())
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # a form Ray reports itself (a malformed address, or none)
    host = host.strip("[]")
    outcome: list[BaseException | None] = []
    probe = threading.Thread(target=_connect, args=(host, int(port), timeout, outcome), daemon=True)
    probe.start()
    probe.join(timeout)
    if outcome and outcome[0] is None:
        return
    if not outcome or isinstance(outcome[0], TimeoutError | socket.timeout):
        why = f"no answer within {timeout:g} s"
    else:
        why = f"{getattr(outcome[0], 'strerror', None) or outcome[0]}"
    shown = address if target == address else f"{address} ({target})"
    raise ConfigError("", f"Ray cluster at {shown} does not answer: {why} (wmstudio waits at most {timeout:g} s); "
                          "check the address (--address, --ray) and that `ray start --head` runs there")
