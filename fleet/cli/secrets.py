"""`fleet secrets`: SOPS files in the fleet repo, and rotation and rollout through the hub.

`encrypt`, `decrypt` and `edit` honour the `.sops.yaml` found by walking up
from FILE. Only `decrypt` prints plaintext, because the user asked for exactly
that; `edit` keeps it in a private temporary file for the editor's lifetime
only. `rotate` and `status` talk to the hub; a value given to `rotate` goes to
the hub (and on to Vault) and is never printed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
from rich.console import Group
from rich.text import Text

from fleet.cli.client import HubClient, data_dir_option, hub_option
from fleet.cli.output import ago, console, emit_data, output_option, styled_health, table
from fleet.secrets import sops
from fleet.secrets.errors import SecretError

EXIT_STALLED = 2  # `status`: a rollout is stalled; `rotate`: written, but not rolled out yet


@click.group()
def secrets() -> None:
    """SOPS-encrypted Secrets under secrets/ (age, PGP, Vault transit, cloud KMS)."""


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except SecretError as exc:
        raise click.ClickException(str(exc)) from None


def _repo_root(file: Path) -> Path:
    """The nearest directory above FILE holding a .sops.yaml."""
    for directory in file.resolve().parents:
        if (directory / sops.SOPS_CONFIG_FILE).is_file():
            return directory
    raise click.ClickException(
        f"no {sops.SOPS_CONFIG_FILE} found above {file}; add one at the repo root with creation_rules "
        f"(path_regex, recipients and encrypted_regex: {sops.RECOMMENDED_REGEX})"
    )


def _relative(file: Path, root: Path) -> str:
    return file.resolve().relative_to(root).as_posix()


def _write_atomically(target: Path, content: bytes) -> None:
    """Replace `target` in one rename, so a crash never leaves it half-written (or empty)."""
    mode = target.stat().st_mode & 0o777 if target.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _check_plaintext_secret(plaintext: bytes, name: str) -> None:
    document = sops.load_document(plaintext, name)
    if "sops" in document:
        raise SecretError(f"{name}: already has a `sops:` block; it is encrypted")
    sops.check_secret_document(document, name)


def _encrypt_checked(plaintext: bytes, file: Path, root: Path) -> bytes:
    name = _relative(file, root)
    _check_plaintext_secret(plaintext, name)
    ciphertext = sops.encrypt(plaintext, name, root, sops.SopsKeys.from_env())
    # The result must be placeable without keys: metadata in the clear, a valid Secret.
    sops.secret_manifest(ciphertext.decode(), name)
    return ciphertext


@secrets.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--in-place", "-i", is_flag=True, help="Replace FILE instead of printing the result.")
def encrypt(file: Path, in_place: bool) -> None:
    """Encrypt a plaintext Secret manifest with the repo's .sops.yaml rules."""
    root = _repo_root(file)
    with _user_errors():
        plaintext = file.read_bytes()
        if sops.is_sops_encrypted(plaintext.decode(errors="replace")):
            raise SecretError(f"{file}: is already SOPS-encrypted")
        ciphertext = _encrypt_checked(plaintext, file, root)
    if in_place:
        _write_atomically(file, ciphertext)
        click.echo(f"encrypted {file}", err=True)
    else:
        click.echo(ciphertext, nl=False)


@secrets.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def decrypt(file: Path) -> None:
    """Print the decrypted manifest to stdout (keys come from SOPS_AGE_KEY_FILE, GNUPGHOME, VAULT_*, ...)."""
    with _user_errors():
        plaintext = sops.decrypt(file.read_bytes(), str(file), sops.SopsKeys.from_env())
    sys.stdout.buffer.write(plaintext)
    sys.stdout.buffer.flush()


def _private_base() -> str | None:
    """A RAM-backed directory when there is one, so the plaintext never reaches a disk."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _destroy(path: Path) -> None:
    if not path.exists():
        return
    shred = shutil.which("shred")
    if shred is not None:
        subprocess.run([shred, "--zero", "--remove", str(path)], check=False, capture_output=True)
    if path.exists():
        with open(path, "r+b") as handle:
            handle.write(b"\0" * path.stat().st_size)
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()


def _run_editor(path: Path) -> None:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    result = subprocess.run([*shlex.split(editor), str(path)], check=False)
    if result.returncode != 0:
        raise SecretError(f"the editor ({editor}) exited with status {result.returncode}; nothing was changed")


@secrets.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def edit(file: Path) -> None:
    """Decrypt into a private temporary file, run $EDITOR, and re-encrypt if it is still a valid Secret."""
    root = _repo_root(file)
    with _user_errors():
        original = sops.decrypt(file.read_bytes(), str(file), sops.SopsKeys.from_env())
        workdir = Path(tempfile.mkdtemp(prefix="fleet-edit-", dir=_private_base()))  # mode 0700
        scratch = workdir / f"secret{file.suffix or '.yaml'}"
        try:
            descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(original)
            _run_editor(scratch)
            edited = scratch.read_bytes()
        finally:
            # Editors leave swap and backup files beside the one they edit: destroy them all.
            for leftover in sorted(workdir.rglob("*"), reverse=True):
                if leftover.is_file() and not leftover.is_symlink():
                    _destroy(leftover)
            shutil.rmtree(workdir, ignore_errors=True)
        if edited == original:
            click.echo(f"{file}: unchanged", err=True)
            return
        ciphertext = _encrypt_checked(edited, file, root)
    _write_atomically(file, ciphertext)
    click.echo(f"re-encrypted {file}", err=True)


# ------------------------------------------------------------------ rotation and rollout (through the hub)


def _value_from_stdin() -> str:
    stream = sys.stdin
    if stream.isatty():
        value = str(click.prompt("new value", hide_input=True, confirmation_prompt=True, err=True))
    else:
        value = stream.read()
        value = value[:-1] if value.endswith("\n") else value
        value = value[:-1] if value.endswith("\r") else value
    if not value:
        raise click.ClickException("no value on stdin; nothing was rotated")
    return value


@secrets.command()
@click.argument("ref")
@click.option(
    "--generate", "length", type=click.IntRange(8, 4096), default=None,
    help="write a random value of this many characters (the default, with 32)",
)
@click.option("--value-from-stdin", is_flag=True, help="read the new value from stdin (a final newline is dropped)")
@click.option(
    "--destroy-old", is_flag=True,
    help="destroy the replaced version in Vault once every target cluster runs the new one with healthy workloads",
)
@hub_option
@data_dir_option
def rotate(
    ref: str, length: int | None, value_from_stdin: bool, destroy_old: bool, hub_url: str | None, data_dir: Path | None
) -> None:
    """Write a new version of a Vault reference (vault:<mount>/<path>#<key>) and roll it out now."""
    if length is not None and value_from_stdin:
        raise click.UsageError("give --generate or --value-from-stdin, not both")
    body: dict[str, Any] = {"ref": ref, "destroyOld": destroy_old}
    if value_from_stdin:
        body["value"] = _value_from_stdin()
    else:
        body["generate"] = length or 32
    client = HubClient.from_options(hub_url, data_dir)
    try:
        result = client.post("/v1/admin/secrets/rotate", body)
    finally:
        body.pop("value", None)
        client.close()
    old = result["oldVersion"] if result["oldVersion"] is not None else "(none)"
    click.echo(f"rotated {result['ref']}: version {old} -> {result['newVersion']}")
    if result["destroyOld"]:
        click.echo(
            f"version {old} will be destroyed once every target runs version {result['newVersion']} "
            "with healthy workloads"
        )
    if not result["rendered"]:
        click.echo(f"warning: {result['message']}", err=True)
        raise SystemExit(EXIT_STALLED)
    click.echo(f"rolling out to {', '.join(result['targets'])}; follow it with `fleet secrets status {result['ref']}`")


_STATE_STYLE = {"complete": "green", "rolling": "yellow", "stalled": "bold red"}


def _styled_state(state: str) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state}[/{style}]" if style else state


def _notes(row: dict[str, Any]) -> str:
    notes = []
    if row.get("destroyPending"):
        notes.append(f"destroy v{', v'.join(map(str, row['destroyPending']))} when complete")
    if row.get("policy"):
        notes.append(f"rotates {row['policy']} (next {row['nextRotation'] or '-'})")
    if row.get("rotatedAt"):
        notes.append(f"rotated {ago(row['rotatedAt'])} by {row.get('rotatedBy') or '?'}")
    return "; ".join(notes)


def _status_table(rows: list[dict[str, Any]]) -> Any:
    return table(
        ["REF", "KIND", "VERSION", "STATE", "ON CURRENT", "BEHIND", "NOTES"],
        [
            [
                r["ref"], r["kind"], str(r["current"] or "-"), _styled_state(r["state"]),
                f"{len(r['onCurrent'])}/{len(r['targets'])}", ", ".join(r["behind"]) or "-", _notes(r),
            ]
            for r in rows
        ],
    )


def _detail_view(detail: dict[str, Any]) -> Any:
    header = Text.from_markup(
        f"[bold]{detail['ref']}[/bold] ({detail['kind']}): version {detail['current']}"
        + (f" (was {detail['previous']})" if detail.get("previous") else "")
        + f", {_styled_state(detail['state'])}"
        + (f"; {_notes(detail)}" if _notes(detail) else "")
    )
    rows = [
        [
            c["cluster"],
            c["expected"].rpartition("@")[2] if detail["kind"] == "vault" else c["expected"][5:24],
            (c["applied"] or "-").rpartition("@")[2] if detail["kind"] == "vault" else (c["applied"] or "-")[5:24],
            ", ".join(f"{o['key'].rsplit('/', 2)[-2]}/{o['key'].rsplit('/', 1)[-1]} {styled_health(o['health'])}"
                      for o in c["objects"]) or "-",
            "[green]yes[/green]" if c["onCurrent"] else "[yellow]no[/yellow]",
            ago(c["reportedAt"]),
        ]
        for c in detail["clusters"]
    ]
    return Group(header, table(["CLUSTER", "EXPECTED", "APPLIED", "OBJECTS", "ON CURRENT", "REPORTED"], rows))


@secrets.command()
@click.argument("ref", required=False)
@output_option
@hub_option
@data_dir_option
def status(ref: str | None, output: str, hub_url: str | None, data_dir: Path | None) -> None:
    """Rollout of every secret source (or of REF): which clusters run its current version.

    Exit code 2 when a rollout shown is stalled.
    """
    client = HubClient.from_options(hub_url, data_dir)
    try:
        data: Any = (
            client.get("/v1/admin/secrets") if ref is None else client.get("/v1/admin/secrets/" + quote(ref, safe=""))
        )
    finally:
        client.close()
    rows = data if ref is None else [data]
    if output != "table":
        emit_data(data, output)
    elif ref is None:
        console().print(_status_table(rows) if rows else "no secret sources in the revision in force")
    else:
        console().print(_detail_view(data))
    if any(r["state"] == "stalled" for r in rows):
        raise SystemExit(EXIT_STALLED)
