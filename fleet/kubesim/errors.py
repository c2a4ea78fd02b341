"""Kubernetes `Status` errors raised by request handling and rendered by the server."""

from __future__ import annotations

from typing import Any

from fleet.kubesim.resources import ResourceType


class ApiError(Exception):
    """An error the API answers with a `Status` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(resource_type: ResourceType | None, name: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if resource_type is not None:
        if resource_type.group:
            details["group"] = resource_type.group
        details["kind"] = resource_type.plural
    details.update(extra)
    return details


def not_found(resource_type: ResourceType, name: str) -> ApiError:
    return ApiError(
        404, "NotFound", f'{resource_type.group_resource} "{name}" not found', _details(resource_type, name)
    )


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource_type: ResourceType, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{resource_type.group_resource} "{name}" already exists', _details(resource_type, name)
    )


def conflict(resource_type: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource_type.group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        _details(resource_type, name),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(resource_type: ResourceType, name: str, causes: list[dict[str, str]]) -> ApiError:
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    kind = resource_type.kind + (f".{resource_type.group}" if resource_type.group else "")
    return ApiError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {summary}',
        {**_details(resource_type, name), "kind": resource_type.kind, "causes": causes},
    )


def cause(field: str, message: str, reason: str = "FieldValueInvalid") -> dict[str, str]:
    return {"reason": reason, "message": message, "field": field}


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def forbidden(message: str, resource_type: ResourceType | None = None, name: str = "") -> ApiError:
    return ApiError(403, "Forbidden", message, _details(resource_type, name))


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
        {},
    )


def too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728", {})


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")
