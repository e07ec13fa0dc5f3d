"""Session-scoped cloud-storage emulators (see emulators.py): `moto` (S3),
`azurite` (Azure Blob), `fake_gcs` (GCS), each with the bucket/container
`bucket` (bleepstore-blobs) created, stopped at the end of the session.

A test may kill() one of them (fault tests); the next test gets it back,
restarted on the same port, empty but with its bucket."""

from __future__ import annotations

import pytest

import emulators

_started: list[emulators.Emulator] = []


def _session(start):
    e = start(emulators.DEFAULT_BUCKET)
    _started.append(e)
    try:
        yield e
    finally:
        _started.remove(e)
        e.close()


@pytest.fixture(scope="session")
def bucket() -> str:
    return emulators.DEFAULT_BUCKET


@pytest.fixture(scope="session")
def moto():
    yield from _session(emulators.start_moto)


@pytest.fixture(scope="session")
def azurite():
    yield from _session(emulators.start_azurite)


@pytest.fixture(scope="session")
def fake_gcs():
    yield from _session(emulators.start_fake_gcs)


@pytest.fixture(autouse=True)
def _revive_emulators():
    yield
    for e in _started:
        if not e.running():
            e.restart()
