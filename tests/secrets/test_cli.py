"""`fleet secrets encrypt|decrypt|edit` through click's runner, with the real sops binary."""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from fleet.cli import main
from fleet.secrets.sops import is_sops_encrypted, sops_metadata
from tests.secrets.conftest import CANARY, AgeKey, age_rule, secret_yaml, write_sops_config

FILE = "secrets/common/db.yaml"


@pytest.fixture
def repo(age_repo: Path, age_key: AgeKey, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(age_key.key_file))
    target = age_repo / FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(secret_yaml(string_data={"password": CANARY}))
    return age_repo


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["secrets", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_encrypt_decrypt_round_trip(repo: Path, age_key: AgeKey) -> None:
    path = repo / FILE
    code, out, _ = run("encrypt", str(path))
    assert code == 0 and is_sops_encrypted(out) and CANARY not in out
    assert not is_sops_encrypted(path.read_text())  # without --in-place the file is untouched

    code, _, err = run("encrypt", "--in-place", str(path))
    assert code == 0 and "encrypted" in err
    text = path.read_text()
    assert CANARY not in text and sops_metadata(text, FILE).recipients == [age_key.recipient]

    code, out, _ = run("decrypt", str(path))
    assert code == 0 and yaml.safe_load(out)["stringData"]["password"] == CANARY

    code, _, err = run("encrypt", str(path))
    assert code == 1 and "already SOPS-encrypted" in err


def test_encrypt_refuses_what_could_not_be_placed(repo: Path, age_key: AgeKey) -> None:
    path = repo / FILE
    path.write_bytes(secret_yaml(namespace="", string_data={"password": CANARY}))
    code, _, err = run("encrypt", "--in-place", str(path))
    assert code == 1 and "namespace" in err and CANARY not in err
    assert not is_sops_encrypted(path.read_text())

    path.write_bytes(secret_yaml(string_data={"password": CANARY}))
    write_sops_config(repo, [age_rule(age_key.recipient, regex=None)])
    code, _, err = run("encrypt", "--in-place", str(path))
    assert code == 1 and "encrypted_regex" in err
    assert not is_sops_encrypted(path.read_text())


def test_missing_sops_config(tmp_path: Path) -> None:
    lonely = tmp_path / "db.yaml"
    lonely.write_bytes(secret_yaml(string_data={"password": CANARY}))
    code, _, err = run("encrypt", str(lonely))
    assert code == 1 and ".sops.yaml" in err


def test_decrypt_of_a_tampered_file_fails_cleanly(repo: Path) -> None:
    path = repo / FILE
    run("encrypt", "--in-place", str(path))
    path.write_text(path.read_text().replace("name: db", "name: dbx"))
    code, out, err = run("decrypt", str(path))
    assert code == 1 and out == "" and "MAC" in err and CANARY not in err


def _editor(tmp_path: Path, body: str) -> Path:
    """A tiny $EDITOR: records what it was given, then edits the document with `body`."""
    script = tmp_path / "editor.py"
    record = tmp_path / "editor-record.json"
    script.write_text(
        f"#!{sys.executable}\n"
        + textwrap.dedent(
            f"""
            import json, os, stat, sys
            import yaml
            path = sys.argv[1]
            json.dump({{
                "path": path,
                "file_mode": stat.S_IMODE(os.stat(path).st_mode),
                "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode),
            }}, open({str(record)!r}, "w"))
            doc = yaml.safe_load(open(path))
            """
        )
        + textwrap.dedent(body)
        + "\nopen(path, 'w').write(yaml.safe_dump(doc))\n"
    )
    script.chmod(0o700)
    return script


def test_edit_reencrypts_and_leaves_no_plaintext(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repo / FILE
    run("encrypt", "--in-place", str(path))
    mode = stat.S_IMODE(path.stat().st_mode)
    editor = _editor(tmp_path, 'doc["stringData"]["password"] = "edited-value"\n')
    monkeypatch.setenv("EDITOR", str(editor))

    code, out, err = run("edit", str(path))
    assert code == 0, err
    assert CANARY not in out + err
    record = json.loads((tmp_path / "editor-record.json").read_text())
    assert record["file_mode"] == 0o600 and record["dir_mode"] == 0o700
    assert not Path(record["path"]).exists() and not Path(record["path"]).parent.exists()

    text = path.read_text()
    assert is_sops_encrypted(text) and "edited-value" not in text
    _, out, _ = run("decrypt", str(path))
    assert yaml.safe_load(out)["stringData"]["password"] == "edited-value"
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_edit_refuses_an_invalid_result(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repo / FILE
    run("encrypt", "--in-place", str(path))
    before = path.read_bytes()
    monkeypatch.setenv("EDITOR", str(_editor(tmp_path, 'del doc["metadata"]["namespace"]\n')))
    code, _, err = run("edit", str(path))
    assert code == 1 and "namespace" in err and CANARY not in err
    assert path.read_bytes() == before
    record = json.loads((tmp_path / "editor-record.json").read_text())
    assert not Path(record["path"]).parent.exists()


def test_edit_without_changes_keeps_the_file(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repo / FILE
    run("encrypt", "--in-place", str(path))
    before = path.read_bytes()
    monkeypatch.setenv("EDITOR", "true")
    code, _, err = run("edit", str(path))
    assert code == 0 and "unchanged" in err
    assert path.read_bytes() == before


def test_failing_editor_changes_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = repo / FILE
    run("encrypt", "--in-place", str(path))
    before = path.read_bytes()
    monkeypatch.setenv("EDITOR", "false")
    code, _, err = run("edit", str(path))
    assert code == 1 and "exited with status 1" in err
    assert path.read_bytes() == before


def test_group_has_file_and_hub_commands() -> None:
    from fleet.cli.secrets import secrets

    assert set(secrets.commands) == {"encrypt", "decrypt", "edit", "rotate", "status"}
