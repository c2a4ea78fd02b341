"""How the CLI finds and talks to the hub.

The hub URL comes from `--hub`, then FLEET_HUB, then the `hub.url` the hub
wrote into its data dir. The admin token comes from FLEET_TOKEN, then the
data dir's `admin.token` (mode 0600).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import httpx

from fleet.hub.datadir import ADMIN_TOKEN_FILE, HUB_URL_FILE, default_data_dir


class HubUnavailable(click.ClickException):
    exit_code = 3


def resolve_hub_url(hub: str | None, data_dir: Path | None = None) -> str:
    if hub:
        return hub.rstrip("/")
    env = os.environ.get("FLEET_HUB")
    if env:
        return env.rstrip("/")
    url_file = (data_dir or default_data_dir()) / HUB_URL_FILE
    if url_file.exists():
        return url_file.read_text().strip().rstrip("/")
    return "http://127.0.0.1:8700"


def resolve_token(data_dir: Path | None = None) -> str | None:
    env = os.environ.get("FLEET_TOKEN")
    if env:
        return env.strip()
    token_file = (data_dir or default_data_dir()) / ADMIN_TOKEN_FILE
    try:
        return token_file.read_text().strip()
    except OSError:
        return None


class HubClient:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout)

    @classmethod
    def from_options(cls, hub: str | None, data_dir: Path | None = None) -> HubClient:
        return cls(resolve_hub_url(hub, data_dir), resolve_token(data_dir))

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HubUnavailable(f"cannot reach the hub at {self.url}: {exc}") from None
        if response.status_code == 401:
            raise click.ClickException(
                f"the hub at {self.url} refused the admin token; set FLEET_TOKEN or use the hub's --data-dir"
            )
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise click.ClickException(f"{method} {path}: {response.status_code} {detail}")
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})


hub_option = click.option(
    "--hub", "hub_url", envvar="FLEET_HUB", default=None, help="hub URL (default: $FLEET_HUB or the local hub)"
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="FLEET_DATA_DIR",
    default=None,
    help="the hub's data dir, to find its URL and admin token",
)
