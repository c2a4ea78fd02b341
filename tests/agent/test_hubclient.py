from __future__ import annotations

import logging

import pytest

from fleet.agent.hubclient import (
    HubClient,
    HubForbidden,
    HubUnauthorized,
    HubUnavailable,
    RetryPolicy,
)
from fleet.protocol import StatusReport
from fleet.secrets.envelope import generate_identity
from tests.agent.standin_hub import StandInHub
from tests.fixtures.ports import free_port

FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}


def _client(url: str, cluster: str = "c1") -> HubClient:
    return HubClient(url, cluster, timeout=2, retry=FAST)


def test_bootstrap_then_desired_with_etag(hub: StandInHub) -> None:
    _, recipient = generate_identity()
    token = hub.issue_token("c1")
    digest = hub.set_desired("c1", [CM])
    client = _client(hub.url)
    response = client.bootstrap(token, recipient, "test")
    assert response.cluster == "c1" and response.credential
    client.credential = response.credential
    desired = client.fetch_desired(None)
    assert desired is not None and desired.digest == digest and desired.objects == [CM]
    assert client.fetch_desired(digest) is None  # 304
    assert hub.requests[-1] == ("GET", "/v1/agents/c1/desired", 304)
    client.post_status(StatusReport(appliedDigest=digest))
    assert hub.last_report("c1").appliedDigest == digest


def test_used_or_wrong_token_is_unauthorized(hub: StandInHub) -> None:
    _, recipient = generate_identity()
    token = hub.issue_token("c1")
    client = _client(hub.url)
    client.bootstrap(token, recipient)
    with pytest.raises(HubUnauthorized):
        client.bootstrap(token, recipient)
    with pytest.raises(HubUnauthorized):
        _client(hub.url, "c2").bootstrap(hub.issue_token("c1"), recipient)


def test_credential_of_another_cluster_is_forbidden(hub: StandInHub) -> None:
    _, recipient = generate_identity()
    credential = _client(hub.url).bootstrap(hub.issue_token("c1"), recipient).credential
    other = _client(hub.url, "c2")
    other.credential = credential
    with pytest.raises(HubForbidden):
        other.fetch_desired(None)
    other.credential = "cred-unknown"
    with pytest.raises(HubUnauthorized):
        other.fetch_desired(None)
    with pytest.raises(HubUnauthorized):
        _client(hub.url).fetch_desired(None)  # no credential at all


def test_503_is_retried_with_backoff_then_unavailable(hub: StandInHub) -> None:
    _, recipient = generate_identity()
    client = _client(hub.url)
    client.credential = client.bootstrap(hub.issue_token("c1"), recipient).credential
    hub.set_desired("c1", [CM])
    hub.desired_failure = 503
    with pytest.raises(HubUnavailable) as raised:
        client.fetch_desired(None)
    assert "vault is down" in str(raised.value)
    assert hub.requests_to("/desired") == FAST.attempts


def test_unreachable_hub_is_unavailable_without_status() -> None:
    client = _client(f"http://127.0.0.1:{free_port()}")
    client.credential = "cred-x"
    with pytest.raises(HubUnavailable) as raised:
        client.fetch_desired(None)
    assert raised.value.status is None
    assert client.requests_sent == FAST.attempts


def test_backoff_is_bounded_full_jitter() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.5, max_delay=3.0)
    for attempt in range(1, 10):
        for _ in range(50):
            assert 0 <= policy.delay(attempt) <= min(3.0, 0.5 * 2**attempt)


def test_credential_never_logged_or_in_errors(hub: StandInHub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _, recipient = generate_identity()
    client = _client(hub.url)
    credential = client.bootstrap(hub.issue_token("c1"), recipient).credential
    client.credential = credential
    hub.set_desired("c1", [CM])
    client.fetch_desired(None)
    hub.desired_failure = 503
    errors = []
    for call in (lambda: client.fetch_desired(None), lambda: _client(hub.url, "c2").bootstrap("x" * 20, recipient)):
        try:
            call()
        except Exception as error:
            errors.append(repr(error) + str(error))
    other = _client(hub.url, "c2")
    other.credential = credential
    try:
        other.fetch_desired(None)
    except HubForbidden as error:
        errors.append(str(error))
    assert len(errors) == 3
    assert credential not in caplog.text
    assert all(credential not in e for e in errors)
    assert credential not in repr(client)
