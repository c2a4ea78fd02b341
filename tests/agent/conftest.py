from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agent.standin_hub import StandInHub


@pytest.fixture
def hub() -> Iterator[StandInHub]:
    server = StandInHub().start()
    try:
        yield server
    finally:
        server.stop()
