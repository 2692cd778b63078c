"""Reading hubs: a local folder, or a base URL (``http(s)://``, ``file://``) read with urllib.

Downloads go to ``FILE.part`` beside their destination and are renamed into place only after
their size and sha256 match the manifest.  An interrupted transfer keeps its ``.part`` and is
resumed with an HTTP ``Range`` request (a server that ignores ``Range`` and answers 200 is
restarted from zero); a hash mismatch deletes the ``.part`` and raises
:class:`~lstm_zoo.hub.manifest.IntegrityError`, so no bad byte survives.

Standard library only: no TensorFlow import just to fetch files.  The progress bar is a small
stderr line rather than ``keras.utils.Progbar`` because importing Keras would pull in
TensorFlow (seconds, and its log noise) for a pure file transfer.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

from lstm_zoo.hub.manifest import (
    HubError,
    IntegrityError,
    safe_relative_path,
    sha256_file,
)

CHUNK = 1 << 16
DEFAULT_TIMEOUT = 30.0
DEFAULT_ATTEMPTS = 3
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
                   OSError)


class DownloadError(HubError):
    """A transfer that failed after every attempt (network down, server error, truncated)."""


class WrongContentError(IntegrityError):
    """The server answered a file request with something else (an HTML error or login page,
    another file): its declared size differs from the manifest's.  Pulling again cannot help."""


class _Truncated(Exception):
    """The server closed the connection before sending every byte."""


class Progress:
    """A one-line byte counter on stderr (``name  [===...] 3.1 MB/12.0 MB 26%``), redrawn in
    place (at most five times a second)."""

    def __init__(self, label: str, total: int, stream: IO[str] | None = None) -> None:
        self.label, self.total, self.stream = label, total, stream or sys.stderr
        self.done, self._last = 0, 0.0

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        pct = f"{100 * done / self.total:3.0f}%" if self.total else ""
        width = 30
        filled = int(width * done / self.total) if self.total else 0
        bar = "=" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label}  [{bar}] {_human(done)}/{_human(self.total)} {pct}")
        self.stream.flush()

    def close(self) -> None:
        self.update(self.done, force=True)
        self.stream.write("\n")
        self.stream.flush()


def _human(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


SCHEMES = ("http", "https", "file")  # what urllib reads here; anything else is refused


def is_url(location: str) -> bool:
    """True for ``http://``, ``https://`` and ``file://`` hub locations."""
    return urllib.parse.urlsplit(str(location)).scheme in SCHEMES


def check_scheme(location: str) -> None:
    """Refuse a ``SCHEME://`` location whose scheme this module cannot read (``ftp://``,
    ``s3://`` ...), naming the supported ones; a plain folder path passes.

    Without this an ``ftp://`` hub was taken for a folder named ``ftp:`` and reported as
    having no index.
    """
    scheme = urllib.parse.urlsplit(str(location)).scheme
    if "://" in str(location) and scheme not in SCHEMES:
        raise HubError(
            f"hub {location!r}: unsupported URL scheme {scheme + '://'!r}; a hub is a local "
            f"folder or a URL starting with {', '.join(s + '://' for s in SCHEMES)}"
        )


class RemoteHub:
    """A hub at a base URL.  Every name read from it is checked before it is requested."""

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT,
                 attempts: int = DEFAULT_ATTEMPTS) -> None:
        check_scheme(base_url)
        if not is_url(base_url):
            raise HubError(f"hub URL {base_url!r}: expected "
                           f"{', '.join(s + '://' for s in SCHEMES)}")
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout
        self.attempts = max(1, attempts)

    def __repr__(self) -> str:
        return f"RemoteHub({self.base_url!r})"

    def url(self, rel: str) -> str:
        safe_relative_path(rel, self.base_url)
        return self.base_url + urllib.parse.quote(rel)

    def _open(self, rel: str, offset: int = 0) -> Any:
        request = urllib.request.Request(self.url(rel), headers={"User-Agent": "lstm-zoo"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - scheme checked
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise HubError(f"{self.url(rel)}: not found on the hub (HTTP 404)") from None
            raise

    def read_bytes(self, rel: str, max_size: int = 16 << 20) -> bytes:
        """A small file (index, manifest) in memory, retried on network errors."""
        last: BaseException | None = None
        for _ in range(self.attempts):
            try:
                with self._open(rel) as response:
                    data = response.read(max_size + 1)
                    expected = response.headers.get("Content-Length")
                if len(data) > max_size:
                    raise HubError(f"{self.url(rel)}: larger than {max_size} bytes; refusing it")
                if expected is not None and expected.isdigit() and len(data) != int(expected):
                    raise _Truncated(f"got {len(data)} of {expected} bytes")
                return data
            except HubError:
                raise
            except (_Truncated, *_NETWORK_ERRORS) as exc:
                last = exc
        raise DownloadError(f"{self.url(rel)}: failed after {self.attempts} attempts: {last}")

    def fetch_file(self, rel: str, dest: Path, sha256: str, size: int,
                   progress: bool = False) -> Path:
        """Download ``rel`` to ``dest``, verified against ``sha256`` and ``size``.

        Resumes a ``dest.part`` left by an earlier interrupted attempt.  On a hash mismatch
        of a resumed file it restarts once from zero (the old prefix may be what was bad);
        a mismatch of a complete fresh download raises :class:`IntegrityError`.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        last: BaseException | None = None
        restarted_after_mismatch = False
        failures = 0
        while failures < self.attempts:
            offset = part.stat().st_size if part.exists() else 0
            if offset > size:
                part.unlink()
                offset = 0
            try:
                if offset < size or size == 0:
                    self._transfer(rel, part, offset, size, progress)
            except HubError:
                raise
            except (_Truncated, *_NETWORK_ERRORS) as exc:
                last, failures = exc, failures + 1  # keep the .part: the next try resumes it
                continue
            actual_size = part.stat().st_size
            digest = sha256_file(part)
            if actual_size == size and digest == sha256:
                os.replace(part, dest)
                return dest
            part.unlink(missing_ok=True)
            if offset and not restarted_after_mismatch:
                restarted_after_mismatch = True  # a resumed prefix was bad: start over once
                continue
            raise IntegrityError(
                f"{self.url(rel)}: downloaded {actual_size} bytes with sha256 {digest}, but the "
                f"manifest says {size} bytes with sha256 {sha256}; the partial file was deleted "
                "and nothing was cached"
            )
        raise DownloadError(
            f"{self.url(rel)}: download failed after {self.attempts} attempts ({last}); "
            "run the pull again to resume"
        )

    def _transfer(self, rel: str, part: Path, offset: int, size: int, progress: bool) -> None:
        with self._open(rel, offset) as response:
            status = getattr(response, "status", None) or 200
            if offset and status != 206:  # Range ignored: the body is the whole file
                offset = 0
            self._check_declared_size(rel, response, size, offset)
            bar = Progress(rel, size) if progress else None
            done = offset
            with open(part, "ab" if offset else "wb") as out:
                while done < size:
                    block = response.read(min(CHUNK, size - done))
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if bar:
                        bar.update(done)
                else:
                    # a server sending more than the manifest says gets caught by the hash check
                    extra = response.read(1)
                    if extra:
                        out.write(extra)
            if bar:
                bar.close()
            content_type = response.headers.get("Content-Type") or ""
        if done < size:
            if content_type.startswith("text/html") and not rel.endswith((".html", ".htm")):
                raise WrongContentError(
                    f"{self.url(rel)}: the server returned something else: {done - offset} "
                    f"bytes of {content_type} (a web page) where the manifest lists a {size}-byte "
                    "file; check the hub URL and the server (nothing was cached)")
            raise _Truncated(f"connection closed after {done} of {size} bytes")

    def _check_declared_size(self, rel: str, response: Any, size: int, offset: int) -> None:
        """Raise :class:`WrongContentError` before writing anything when the response declares
        (``Content-Length``) another size than the manifest's for what was asked: the server
        sent something else, e.g. an HTML page with status 200, and a resume cannot help."""
        declared = response.headers.get("Content-Length")
        if declared is None or not declared.strip().isdigit() or int(declared) == size - offset:
            return
        content_type = response.headers.get("Content-Type") or "no content type"
        asked = f"bytes {offset}- of a {size}-byte file" if offset else f"a {size}-byte file"
        raise WrongContentError(
            f"{self.url(rel)}: the server returned something else: {int(declared)} bytes of "
            f"{content_type} (HTTP {getattr(response, 'status', None) or 200}) where the manifest "
            f"lists {asked}; an error or login page, or a hub that does not serve this file "
            "as published; check the hub URL and the server (nothing was cached)"
        )

