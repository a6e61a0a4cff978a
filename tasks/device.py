"""Who owns a device: one model step at a time per machine and device.

A machine-local file lock (the kernel frees it if its holder is killed), then the Prefect
concurrency slot of this host and device (visible in the UI). Every machine and every device has
its own: nothing serializes the GPUs of a cluster.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path

from prefect.concurrency.sync import concurrency

from laughtrack.config import Engine

SLOT_LEASE_S = 60                   # a crashed holder's slot is released by the server after this
SLOT_WAIT_S = 10.0                  # while we hold this machine's device lock, a taken slot is stale


@contextlib.contextmanager
def device_owner(engine: Engine):
    """Own this machine's device: a machine-local file lock (the kernel frees it if its holder is
    killed), then the Prefect slot of this host and device (visible in the UI). Every machine and
    every device has its own: nothing serializes the GPUs of a cluster.

    A holder takes the lock before the slot and gives the slot back before the lock, so a process
    holding the lock that still finds the slot taken has met a killed holder's leftover: it resets
    the slot at once (a server would also release it when its lease runs out).
    """
    Path(engine.cache_dir).mkdir(parents=True, exist_ok=True)
    lock = Path(engine.cache_dir) / f"device-{engine.device.replace(':', '-')}.lock"
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            with _prefect_slot(engine.device_slot):
                yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_held: set[str] = set()              # device slots this process holds now (released on an interrupt)


def release_held_slots() -> None:
    """Give back the device slots this process holds, for a process about to exit mid-step (an
    interrupt): the next run on this machine need not wait for the lease to run out."""
    for name in list(_held):
        _reset_slot(name)
        _held.discard(name)


@contextlib.contextmanager
def _prefect_slot(name: str):
    acquired = False
    try:
        with concurrency(name, occupy=1, timeout_seconds=SLOT_WAIT_S, lease_duration=SLOT_LEASE_S):
            acquired = True
            _held.add(name)
            try:
                yield
            finally:
                _held.discard(name)
            return
    except TimeoutError:
        if acquired:   # raised by the body, not by the wait
            raise
    logging.getLogger("laughtrack").warning("the %s slot was taken while no process on this machine held the "
                                            "device; resetting it (left by a killed run)", name)
    _reset_slot(name)
    with concurrency(name, occupy=1, timeout_seconds=SLOT_WAIT_S, lease_duration=SLOT_LEASE_S):
        _held.add(name)
        try:
            yield
        finally:
            _held.discard(name)


def _reset_slot(name: str) -> None:
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))


def ensure_device_limit(engine: Engine) -> None:
    """Create this host and device's 1-slot limit if missing (Prefect serializes only on a limit that
    exists). An existing limit is left alone."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(engine.device_slot)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=engine.device_slot, limit=1))
            except ObjectAlreadyExists:
                pass
