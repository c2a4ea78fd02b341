"""Scrubbing secret values from text and log records: a last line of defence.

The modules above are written so values never reach a message in the first
place; this catches mistakes. It does not keep the values it has seen (that
would be the plaintext cache we promise not to have): it keeps keyed hashes
and lengths, and finds matches by hashing the text's windows of those lengths.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import secrets
import threading

REDACTED = "[REDACTED]"
MIN_LENGTH = 4  # shorter values would scrub ordinary words out of every log line


class Redactor:
    """Registers secret values seen in this process and replaces them in text with [REDACTED]."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        # length -> keyed hashes of registered values of that length
        self._hashes: dict[int, set[bytes]] = {}
        # length -> built-in str hashes: a cheap prefilter before the keyed hash
        self._quick: dict[int, set[int]] = {}

    def __repr__(self) -> str:
        return f"Redactor({sum(len(h) for h in self._hashes.values())} values)"

    def _hash(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), key=self._key, digest_size=16).digest()

    def register(self, value: str | bytes) -> None:
        """Remember a value (and its base64 form, as it appears in Secrets) so it can be scrubbed."""
        forms: list[str] = []
        if isinstance(value, bytes):
            forms.append(base64.b64encode(value).decode("ascii"))
            with contextlib.suppress(UnicodeDecodeError):
                forms.append(value.decode("utf-8"))
        else:
            forms.append(value)
            forms.append(base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii"))
        with self._lock:
            for form in forms:
                if len(form) >= MIN_LENGTH:
                    self._hashes.setdefault(len(form), set()).add(self._hash(form))
                    self._quick.setdefault(len(form), set()).add(hash(form))

    def redact(self, text: str) -> str:
        """`text` with every registered value replaced; longer values first so no fragment survives."""
        with self._lock:
            by_length = sorted(
                ((length, frozenset(self._quick[length]), frozenset(h)) for length, h in self._hashes.items()),
                key=lambda item: item[0],
                reverse=True,
            )
        for length, quick, hashes in by_length:
            if length > len(text):
                continue
            pieces: list[str] = []
            start = index = 0
            while index <= len(text) - length:
                window = text[index : index + length]
                if hash(window) in quick and self._hash(window) in hashes:
                    pieces.append(text[start:index])
                    pieces.append(REDACTED)
                    index += length
                    start = index
                else:
                    index += 1
            pieces.append(text[start:])
            text = "".join(pieces)
        return text

    def filter(self) -> RedactingFilter:
        return RedactingFilter(self)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's message (and traceback text) through a Redactor."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redactor.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True
