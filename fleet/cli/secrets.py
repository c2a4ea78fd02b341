"""`fleet secrets`: encrypt, decrypt and edit SOPS-encrypted Secrets in the fleet repo.

Every command honours the `.sops.yaml` found by walking up from FILE. Only
`decrypt` prints plaintext, because the user asked for exactly that; `edit`
keeps it in a private temporary file for the editor's lifetime only.
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

import click

from fleet.secrets import sops
from fleet.secrets.errors import SecretError


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
