"""Side effects of a failover outside the fleet: the DNS record and a webhook message."""

from __future__ import annotations

import logging
from typing import Any

import boto3
import httpx

from fleet.inventory.models import Route53Record

log = logging.getLogger("fleet.hub.notify")

WEBHOOK_TIMEOUT = 5.0


class NotifyError(Exception):
    pass


def point_route53_record(record: Route53Record, value: str, endpoint_url: str | None = None) -> str:
    """UPSERT the group's failover record to `value`; returns the Route53 change id.

    boto3 finds credentials and the endpoint itself (AWS_ENDPOINT_URL for a
    local stand-in); nothing is stored.
    """
    client = boto3.client("route53", endpoint_url=endpoint_url)
    name = record.record if record.record.endswith(".") else record.record + "."
    try:
        response = client.change_resource_record_sets(
            HostedZoneId=record.zoneId,
            ChangeBatch={
                "Comment": "fleet failover",
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": name,
                            "Type": record.type,
                            "TTL": record.ttl,
                            "ResourceRecords": [{"Value": value}],
                        },
                    }
                ],
            },
        )
    except Exception as exc:  # botocore raises many types; the message is what matters here
        raise NotifyError(f"Route53 update of {name} in zone {record.zoneId} failed: {exc}") from None
    return str(response["ChangeInfo"]["Id"])


def post_webhook(url: str, text: str, event: dict[str, Any]) -> None:
    """A JSON message with a Slack-compatible `text` field and the structured event."""
    try:
        response = httpx.post(url, json={"text": text, "event": event}, timeout=WEBHOOK_TIMEOUT)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise NotifyError(f"webhook {httpx.URL(url).host} failed: {exc}") from None
