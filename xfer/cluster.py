"""Ray for xfer: join the study's cluster, or start a local Ray on loopback; any failure is a RayStartError."""
from __future__ import annotations

import _thread
import contextlib
import logging
import os
import signal
import socket
import threading
from typing import Iterator, Optional

from xfer.console import say

# Ray reads this once, when it is imported (xfer.run imports this module first): two stages' progress lines are
# their own, not folded into "[repeated 2x across cluster]"
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


class RayStartError(RuntimeError):
    """Ray could not start, or its cluster could not be reached: no trial ran (not an interruption)."""


CONNECT_TIMEOUT_S = 10  # an unreachable cluster address fails within this, not after Ray's minutes of retries
JOIN_TIMEOUT_S = 60  # a reachable address whose Ray does not answer fails after this (+ up to ~35 s: Ray checks
# for the interrupt only between its own blocking waits)


def reachable(address: str) -> None:
    """Raise RayStartError unless a TCP connection to `address` (host:port or ray://host:port) opens in time."""
    if "://" in address and not address.startswith("ray://"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", "local" or a bare host: Ray resolves those itself
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:  # a SIGINT meanwhile is a KeyboardInterrupt, not caught here
        raise RayStartError(f"cannot reach the Ray cluster at {address} ({e}); check ray.address / RAY_ADDRESS, "
                            f"that its head node runs (`ray status` there) and that the port is open") from None


@contextlib.contextmanager
def _interrupt_after(seconds: float) -> Iterator[threading.Event]:
    """Interrupt the main thread (as Ctrl-C does) if the block runs longer than `seconds`; the event says it did.
    Ray's join waits on an open port that is not a GCS for minutes (measured: over 80 s, still waiting)."""
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        _thread.interrupt_main()

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def connect(address: Optional[str]) -> None:
    """Join the Ray cluster at `address` (or RAY_ADDRESS); otherwise start a local Ray on loopback only.
    Any failure is a RayStartError carrying Ray's message."""
    import ray  # seconds of imports, paid by the command that starts trials, not by `import xfer.run`

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        reachable(address)
    if ray.is_initialized():
        return
    with _sigterm_kept():
        _init(ray, address)


class _sigterm_kept:
    """The process's SIGTERM handler as it was before `ray.init`: Ray's driver handler (SystemExit) must not replace
    the study's, which marks the trials killed, writes the summary and exits 143."""

    def __enter__(self):
        self.previous = signal.getsignal(signal.SIGTERM)
        return self

    def __exit__(self, *exc) -> bool:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def _init(ray, address: Optional[str]) -> None:
    """ray.init for `connect`: join `address` (within JOIN_TIMEOUT_S) or start a local Ray."""
    try:
        if address:
            with _interrupt_after(JOIN_TIMEOUT_S) as timed_out:
                try:
                    ray.init(address=address, log_to_driver=True)
                except KeyboardInterrupt:
                    if not timed_out.is_set():
                        raise  # the user's Ctrl-C
                    raise RayStartError(f"the Ray cluster at {address} did not answer within {JOIN_TIMEOUT_S} s (the "
                                        f"port is open: is it Ray's GCS port, usually 6379?)") from None
            say(f"joined the Ray cluster at {address}")
        else:
            logging.getLogger(RAY_AUTH_LOGGER).addFilter(_not_token_auth_notice)
            ray.init(**LOCAL_RAY)
    except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError, TimeoutError...
        raise RayStartError(f"Ray could not {'join ' + address if address else 'start locally'}: "
                            f"{type(e).__name__}: {str(e)[:1000]}") from e


# A local Ray serves this process only: no dashboard, node address 127.0.0.1. Ray 2.60 still binds the GCS, raylet
# and worker gRPC servers to all interfaces (measured; no Ray option changes it): its token authentication guards them.
LOCAL_RAY = {"include_dashboard": False, "log_to_driver": True, "_node_ip_address": "127.0.0.1"}
# Ray 2.60 turns token authentication on for a new local cluster and says so at WARNING on every run. xfer keeps
# that default (loopback binding stops other machines, the token stops other local users' processes) and drops only
# that notice; every other message of the logger, including "token authentication is disabled", still shows.
RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def _not_token_auth_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")
