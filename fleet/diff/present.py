"""`fleet plan` output: text for a terminal, Markdown for a PR comment, JSON for tools. Pure functions.

Values arrive already redacted (see fleet.diff.bundles); these functions only lay them out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleet.diff.bundles import (
    ABSENT,
    SECRETS_APP,
    ClusterDiff,
    FieldChange,
    ObjectAction,
    ObjectChange,
    PlanDiff,
)
from fleet.diff.live import LiveCluster
from fleet.diff.redact import REDACTED
from fleet.errors import SpecProblem

MAX_VALUE_CHARS = 160
# GitHub refuses comments over 65536 characters; keep room for the header and the note.
MAX_MARKDOWN_CHARS = 60000
_SYMBOL = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True)
class RevisionLabel:
    """How to name a revision: what the user asked for and the commit it resolved to."""

    ref: str
    sha: str | None = None  # None for the uncommitted work tree

    def __str__(self) -> str:
        return f"{self.ref} ({self.sha[:12]})" if self.sha else self.ref

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "sha": self.sha}


def show_value(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    if value is ABSENT:
        return "(none)"
    if value == REDACTED:
        return REDACTED
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def cluster_counts(diff: ClusterDiff) -> str:
    actions: tuple[tuple[ObjectAction, str], ...] = (("create", "create"), ("update", "change"), ("delete", "delete"))
    parts = [f"{diff.count(action)} to {word}" for action, word in actions if diff.count(action)]
    if diff.apps_added:
        parts.append("apps added: " + ", ".join(diff.apps_added))
    if diff.apps_removed:
        parts.append("apps removed: " + ", ".join(diff.apps_removed))
    return "; ".join(parts) or "no changes"


def summary_text(plan: PlanDiff) -> str:
    totals = plan.totals()
    return (
        f"{_plural(totals['clustersChanged'], 'cluster')} changed, {totals['clustersAdded']} added, "
        f"{totals['clustersRemoved']} removed, {totals['clustersUnchanged']} unchanged; "
        f"{totals['create']} to create, {totals['update']} to change, {totals['delete']} to delete"
    )


def _object_heading(change: ObjectChange) -> str:
    app = " (from secrets/)" if change.app == SECRETS_APP else (f" (app {change.app})" if change.app else "")
    return f"{_SYMBOL[change.action]} {change.title}{app}"


def _field_line(change: FieldChange) -> str:
    return f"{change.path}: {show_value(change.old)} -> {show_value(change.new)}"


def _cluster_status(diff: ClusterDiff) -> str:
    return {"added": " (new cluster)", "removed": " (cluster removed)"}.get(diff.status, "")


# ------------------------------------------------------------------ text


def format_text(
    plan: PlanDiff, base: RevisionLabel, head: RevisionLabel, live: Sequence[LiveCluster] | None = None
) -> str:
    lines = [f"fleet plan: {base} -> {head}", summary_text(plan)]
    if not plan.has_changes:
        lines.append("no changes to any cluster")
    for diff in plan.changed:
        symbol = {"added": "+", "removed": "-"}.get(diff.status, "~")
        lines.append("")
        lines.append(f"{symbol} cluster {diff.cluster}{_cluster_status(diff)}: {cluster_counts(diff)}")
        for change in diff.objects:
            lines.append(f"    {_object_heading(change)}")
            lines.extend(f"        {_field_line(field)}" for field in change.fields)
    if plan.moves:
        lines.append("")
        lines.append("apps moving:")
        for move in plan.moves:
            where = [f"+{c}" for c in move.added] + [f"-{c}" for c in move.removed]
            lines.append(f"    {move.app}: {' '.join(where)}")
    unchanged = [c.cluster for c in plan.clusters if c.status == "unchanged"]
    if unchanged:
        lines.append("")
        lines.append(f"unchanged: {', '.join(unchanged)}")
    if live is not None:
        lines.append("")
        lines.append("against the hub's live state:")
        for cluster in live:
            delta = cluster_counts(cluster.diff) if cluster.known else ""
            flag = "!" if not cluster.in_sync else " "
            revision = f" at {cluster.revision[:12]}" if cluster.revision else ""
            lines.append(f"  {flag} {cluster.cluster}: {cluster.state}{revision}" + (f"; head: {delta}" if delta else ""))
    return "\n".join(lines)


# ------------------------------------------------------------------ markdown


def _fence_safe(text: str) -> str:
    return text.replace("```", "`\u200b``")


def _cluster_block(diff: ClusterDiff) -> str:
    body = []
    for change in diff.objects:
        body.append(_object_heading(change))
        for field in change.fields:
            if field.old is not ABSENT:
                body.append(f"-     {field.path}: {show_value(field.old)}")
            if field.new is not ABSENT:
                body.append(f"+     {field.path}: {show_value(field.new)}")
    if diff.apps_added or diff.apps_removed:
        body.append(f"# {cluster_counts(diff)}")
    summary = f"<b>{diff.cluster}</b>{_cluster_status(diff)}: {cluster_counts(diff)}"
    return (
        f"<details><summary>{summary}</summary>\n\n```diff\n"
        + _fence_safe("\n".join(body))
        + "\n```\n\n</details>"
    )


def format_markdown(
    plan: PlanDiff, base: RevisionLabel, head: RevisionLabel, live: Sequence[LiveCluster] | None = None
) -> str:
    live_by_name = {c.cluster: c for c in live or ()}
    header = [
        "### fleet plan",
        "",
        f"`{base}` → `{head}`: {summary_text(plan)}",
        "",
    ]
    columns = ["cluster", "status", "create", "change", "delete"] + (["hub"] if live is not None else [])
    header.append("| " + " | ".join(columns) + " |")
    header.append("|" + "|".join("---:" if c in ("create", "change", "delete") else "---" for c in columns) + "|")
    for diff in plan.clusters:
        row = [f"`{diff.cluster}`", diff.status, str(diff.count("create")), str(diff.count("update")), str(diff.count("delete"))]
        if live is not None:
            known = live_by_name.get(diff.cluster)
            row.append("—" if known is None else ("✅ in sync" if known.in_sync else f"⚠️ {known.state}"))
        header.append("| " + " | ".join(row) + " |")
    if plan.moves:
        header.append("")
        header.append("**Apps moving**")
        header.append("")
        for move in plan.moves:
            where = [f"+`{c}`" for c in move.added] + [f"-`{c}`" for c in move.removed]
            header.append(f"- `{move.app}`: {' '.join(where)}")
    if not plan.has_changes:
        header.append("")
        header.append("No changes to any cluster.")

    sections = [_cluster_block(diff) for diff in plan.changed]
    if live is not None:
        lines = ["**Against the hub's live state**", ""]
        for cluster in live:
            revision = f" at `{cluster.revision[:12]}`" if cluster.revision else ""
            delta = f"; merging changes: {cluster_counts(cluster.diff)}" if cluster.known else ""
            mark = "✅" if cluster.in_sync else "⚠️"
            lines.append(f"- {mark} `{cluster.cluster}`: {cluster.state}{revision}{delta}")
        sections.append("\n".join(lines))

    out = "\n".join(header)
    for index, section in enumerate(sections):
        if len(out) + len(section) + 200 > MAX_MARKDOWN_CHARS:
            out += (
                f"\n\n_{len(sections) - index} more section(s) left out to fit a comment; "
                "run `fleet plan` locally for the full plan._"
            )
            break
        out += "\n\n" + section
    return out + "\n"


# ------------------------------------------------------------------ json


def to_json(
    plan: PlanDiff, base: RevisionLabel, head: RevisionLabel, live: Sequence[LiveCluster] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"base": base.to_dict(), "head": head.to_dict(), **plan.to_dict()}
    if live is not None:
        out["live"] = [cluster.to_dict() for cluster in live]
    return out


# ------------------------------------------------------------------ failures


def format_failure(label: str, revision: RevisionLabel, problems: Sequence[SpecProblem], output: str) -> str:
    """A revision that does not render, in the requested format."""
    lines = [str(p) for p in problems]
    if output == "markdown":
        body = "\n".join(f"- `{_fence_safe(line)}`" for line in lines)
        return f"### fleet plan\n\n❌ **{label}** `{revision}` does not render:\n\n{body}\n"
    if output == "json":
        return json.dumps(
            {
                "error": f"{label} does not render",
                label: revision.to_dict(),
                "problems": [
                    {"file": p.file, "line": p.line, "field": p.field, "message": p.message, "severity": p.severity}
                    for p in problems
                ],
            },
            indent=2,
        )
    return "\n".join([f"fleet plan: {label} {revision} does not render:", *(f"  {line}" for line in lines)])
