"""Content-addressed artifacts on a local folder (default) or any fsspec URL.

A blob lives at `<root>/blobs/sha256/<ab>/<hex>`; a tree (an adapter's files) at
`<root>/trees/sha256/<hex>/<name>...`, its digest taken over the named files in a fixed order
(`ids.digest_files`). Writes go to a temporary name and are renamed into place, so no partial
object ever sits under a digest. Every read verifies the bytes against the digest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import fsspec
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import IntegrityError, InvalidInput, NotFound
from services.kernel.ids import digest_files, is_digest, sha256_bytes, sha256_file
from services.kernel.settings import Settings

_CHUNK = 1 << 20


class BlobStore:
    """Put, get and verify artifacts by `sha256:` digest."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root)
        self.local = self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        """The artifact store the settings name."""
        return cls(settings.artifacts)

    # ------------------------------------------------------------ paths
    def _blob_path(self, digest: str) -> str:
        hexd = _hex(digest)
        return f"{self._base}/blobs/sha256/{hexd[:2]}/{hexd}"

    def _tree_path(self, digest: str) -> str:
        return f"{self._base}/trees/sha256/{_hex(digest)}"

    def uri(self, path: str) -> str:
        """The URI consumers receive for a stored path."""
        return self.fs.unstrip_protocol(path) if not self.local else path

    # ------------------------------------------------------------ blobs
    def put_bytes(self, data: bytes, media_type: str = "application/octet-stream") -> ev.ArtifactRef:
        """Store bytes under their digest (a no-op when already stored)."""
        digest = sha256_bytes(data)
        path = self._blob_path(digest)
        if not self.fs.exists(path):
            self._atomic_write(path, data)
        return ev.ArtifactRef(digest=digest, uri=self.uri(path), media_type=media_type, size_bytes=len(data))

    def put_file(self, source: str | Path, media_type: str = "application/octet-stream") -> ev.ArtifactRef:
        """Store a file's bytes under their digest, streaming it."""
        digest = sha256_file(source)
        path = self._blob_path(digest)
        if not self.fs.exists(path):
            self._atomic_copy(Path(source), path)
        return ev.ArtifactRef(digest=digest, uri=self.uri(path), media_type=media_type, size_bytes=os.path.getsize(source))

    def get_bytes(self, ref: ev.ArtifactRef) -> bytes:
        """The bytes of an artifact, verified against its digest (IntegrityError on mismatch)."""
        path = self._resolve(ref, self._blob_path)
        try:
            with self.fs.open(path, "rb") as f:
                # Bounded by the declared size: a blob longer than its reference says is refused
                # after reading one byte more, not read to its end.
                data: bytes = f.read(ref.size_bytes + 1) if ref.size_bytes > 0 else f.read()
        except FileNotFoundError:
            raise NotFound(f"artifact {ref.digest} is missing at {path}") from None
        if 0 < ref.size_bytes < len(data):
            raise IntegrityError(f"artifact {ref.digest} at {path} is longer than its declared {ref.size_bytes} bytes")
        _check(ref.digest, sha256_bytes(data), path)
        return data

    def fetch_file(self, ref: ev.ArtifactRef, dest: str | Path) -> Path:
        """Copy an artifact to a local file, verified; the file appears only if it matches."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
        h = hashlib.sha256()
        path = self._resolve(ref, self._blob_path)
        try:
            with self.fs.open(path, "rb") as src, open(tmp, "wb") as out:
                read = 0
                while chunk := src.read(_CHUNK):
                    read += len(chunk)
                    if 0 < ref.size_bytes < read:
                        raise IntegrityError(f"artifact {ref.digest} at {path} is longer than its declared {ref.size_bytes} bytes")
                    h.update(chunk)
                    out.write(chunk)
            _check(ref.digest, "sha256:" + h.hexdigest(), path)
        except FileNotFoundError:
            raise NotFound(f"artifact {ref.digest} is missing at {path}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, dest)
        return dest

    # ------------------------------------------------------------ trees
    def put_tree(self, files: Sequence[tuple[str, str | Path]], media_type: str = "application/vnd.tuneline.tree") -> ev.ArtifactRef:
        """Store named files as one artifact whose digest covers names, sizes and bytes in order."""
        for name, _ in files:
            if "/" in name or name in ("", ".", ".."):
                raise InvalidInput(f"tree file names must be plain names, got {name!r}")
        digest = digest_files(files)
        path = self._tree_path(digest)
        if not self.fs.exists(f"{path}/.complete"):
            staging = f"{path}.partial-{os.getpid()}"
            for name, src in files:
                self._put_plain(Path(src), f"{staging}/{name}")
            self._put_plain_bytes("\n".join(n for n, _ in files).encode(), f"{staging}/.complete")
            self._publish_dir(staging, path)
        size = sum(os.path.getsize(p) for _, p in files)
        return ev.ArtifactRef(digest=digest, uri=self.uri(path), media_type=media_type, size_bytes=size)

    def fetch_tree(self, ref: ev.ArtifactRef, dest_dir: str | Path) -> Path:
        """Copy a tree to a local folder and verify its digest before returning the folder."""
        path = self._resolve(ref, self._tree_path)
        try:
            with self.fs.open(f"{path}/.complete", "rb") as f:
                names = f.read().decode().split("\n")
        except FileNotFoundError:
            raise NotFound(f"artifact {ref.digest} is missing at {path}") from None
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            if "/" in name or name in ("", ".", ".."):
                raise IntegrityError(f"artifact {ref.digest}: bad file name {name!r} in its manifest")
            self.fs.get(f"{path}/{name}", str(dest / name))
        _check(ref.digest, digest_files([(n, dest / n) for n in names]), path)
        return dest

    # ------------------------------------------------------------ writing
    def _resolve(self, ref: ev.ArtifactRef, default_path: Callable[[str], str]) -> str:
        """Where to read an artifact: its URI's path, which must lie inside this store's root, else refused.

        The check runs before any read, so an event naming `/dev/zero`, `/etc/passwd`, a `..` walk out
        of the root or another bucket reads nothing. An empty URI means the digest's own path.
        """
        if not is_digest(ref.digest):
            raise InvalidInput(f"not a digest: {ref.digest!r}")
        if not ref.uri:
            return default_path(ref.digest)
        fs, path = fsspec.core.url_to_fs(ref.uri)
        if type(fs) is type(self.fs) and self._inside_root(str(path)):
            return str(path)
        raise InvalidInput(f"artifact {ref.digest}: URI {ref.uri!r} lies outside the artifact store {self.root!r}; nothing was read",
                           hint="artifacts are read only from the configured artifact root (TUNELINE_ARTIFACT_ROOT)")

    def _inside_root(self, path: str) -> bool:
        if self.local:  # symlinks followed: a link inside the root that points out of it is outside
            return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(self._base))
        parts = path.split("/")
        return ".." not in parts and path.startswith(self._base.rstrip("/") + "/")

    def _atomic_write(self, path: str, data: bytes) -> None:
        if self.local:
            _local_atomic(Path(path), lambda f: f.write(data))
        else:
            self.fs.pipe_file(path, data)  # object stores publish an object only once it is whole

    def _atomic_copy(self, src: Path, path: str) -> None:
        if self.local:
            with open(src, "rb") as s:
                _local_atomic(Path(path), lambda f: shutil.copyfileobj(s, f, _CHUNK))
        else:
            self.fs.put_file(str(src), path)

    def _put_plain(self, src: Path, path: str) -> None:
        if self.local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, path)
        else:
            self.fs.put_file(str(src), path)

    def _put_plain_bytes(self, data: bytes, path: str) -> None:
        if self.local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
        else:
            self.fs.pipe_file(path, data)

    def _publish_dir(self, staging: str, path: str) -> None:
        if self.local:
            try:
                os.replace(staging, path)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)  # another writer got there first
        else:
            self.fs.mv(staging, path, recursive=True)


def _local_atomic(path: Path, write: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)  # type: ignore[operator]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _hex(digest: str) -> str:
    if not is_digest(digest):
        raise InvalidInput(f"not a digest: {digest!r}")
    return digest.removeprefix("sha256:")


def _check(expected: str, actual: str, where: str) -> None:
    if expected != actual:
        raise IntegrityError(
            f"artifact {expected} does not match its bytes at {where} (found {actual})",
            hint="the stored artifact was altered or corrupted; re-publish it or restore it from a backup",
        )
