"""Content-addressed artifacts on a local folder (default) or any fsspec URL.

A blob lives at `<root>/blobs/sha256/<ab>/<hex>`; a tree (an adapter's files) at
`<root>/trees/sha256/<hex>/<name>...`, its digest taken over the named files in a fixed order
(`ids.digest_files`). Local writes go to a temporary name and are renamed into place, so no partial
object ever sits under a digest; on an object store (s3://, through s3fs: endpoint and credentials
from the usual `AWS_*` variables) each object is put whole, and a tree's manifest (`.complete`) last,
so a tree is readable only once all its files are. Every read verifies the bytes against the digest.

With at-rest keys (`settings.at_rest_key_file`, `services.kernel.sealing`) every object is stored
sealed: a blob bound to its digest, each tree file to the tree's digest and its name. Digests, sizes
and URIs stay those of the plaintext, so identities do not change. Objects stored before the key was
set still read (an object without the sealed magic is plaintext, verified as ever); putting one again,
or `reseal`, seals it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import fsspec
from tuneline.events.v1 import events_pb2 as ev

from services.kernel.errors import ConfigError, IntegrityError, InvalidInput, NotFound
from services.kernel.ids import digest_files, is_digest, sha256_bytes, sha256_file
from services.kernel.sealing import (
    HEADER_BYTES,
    SealingKeys,
    is_sealed,
    load_keys,
    no_key,
    open_stream,
    read_exact,
    seal_bytes,
    seal_file,
)
from services.kernel.settings import Settings

_CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Resealed:
    """What `BlobStore.reseal` rewrote, and how many objects were already sealed with the current key."""

    blobs: int
    trees: int
    current: int


class BlobStore:
    """Put, get and verify artifacts by `sha256:` digest; sealed at rest when given keys."""

    def __init__(self, root: str, keys: SealingKeys | None = None) -> None:
        self.root = root.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root)
        self.local = self.fs.protocol in ("file", ("file", "local")) or "file" in self.fs.protocol
        self.keys = keys

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStore:
        """The artifact store the settings name, sealing with the at-rest key file's keys when one is set."""
        return cls(settings.artifacts, load_keys(settings.at_rest_key_file) if settings.at_rest_key_file else None)

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
        if not self._stored(path):
            self._atomic_write(path, seal_bytes(self.keys.current, _blob_aad(digest), data) if self.keys else data)
        return ev.ArtifactRef(digest=digest, uri=self.uri(path), media_type=media_type, size_bytes=len(data))

    def put_file(self, source: str | Path, media_type: str = "application/octet-stream") -> ev.ArtifactRef:
        """Store a file's bytes under their digest, streaming it."""
        digest = sha256_file(source)
        path = self._blob_path(digest)
        if not self._stored(path):
            if self.keys:
                self._atomic_stream(path, seal_file(self.keys.current, _blob_aad(digest), Path(source)))
            else:
                self._atomic_copy(Path(source), path)
        return ev.ArtifactRef(digest=digest, uri=self.uri(path), media_type=media_type, size_bytes=os.path.getsize(source))

    def get_bytes(self, ref: ev.ArtifactRef) -> bytes:
        """The bytes of an artifact, verified against its digest (IntegrityError on mismatch)."""
        path = self._resolve(ref, self._blob_path)
        try:
            with self.fs.open(path, "rb") as f:
                data = b"".join(self._plain(f, _blob_aad(ref.digest), f"artifact {ref.digest} at {path}", ref.size_bytes))
        except FileNotFoundError:
            raise NotFound(f"artifact {ref.digest} is missing at {path}") from None
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
                for chunk in self._plain(src, _blob_aad(ref.digest), f"artifact {ref.digest} at {path}", ref.size_bytes):
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
        complete = f"{path}/.complete"
        if not self._stored(complete):
            if not self.local or self.fs.exists(path):
                # Written in place, each file put whole and the manifest last: on an object store always (it
                # has no folder to rename; a tree is there once its manifest is), locally when its folder is
                # there already (stored before the key was set, under an older key, or missing its manifest).
                # Every state in between reads (mixed files open alike); a tree without its manifest is not there.
                self._write_tree(files, digest, path)
            else:
                staging = f"{path}.partial-{os.getpid()}"
                self._write_tree(files, digest, staging)
                self._publish_dir(staging, path)
        size = sum(os.path.getsize(p) for _, p in files)
        return ev.ArtifactRef(digest=digest, uri=self.uri(path), media_type=media_type, size_bytes=size)

    def fetch_tree(self, ref: ev.ArtifactRef, dest_dir: str | Path) -> Path:
        """Copy a tree to a local folder and verify its digest before returning the folder."""
        path = self._resolve(ref, self._tree_path)
        names = self._manifest(ref.digest, path)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            if "/" in name or name in ("", ".", ".."):
                raise IntegrityError(f"artifact {ref.digest}: bad file name {name!r} in its manifest")
            with self.fs.open(f"{path}/{name}", "rb") as src, open(dest / name, "wb") as out:
                for chunk in self._plain(src, _tree_aad(ref.digest, name), f"artifact {ref.digest} file {name} at {path}"):
                    out.write(chunk)
        _check(ref.digest, digest_files([(n, dest / n) for n in names]), path)
        return dest

    def _manifest(self, digest: str, path: str) -> list[str]:
        """A stored tree's file names, in digest order."""
        try:
            with self.fs.open(f"{path}/.complete", "rb") as f:
                data = b"".join(self._plain(f, _tree_aad(digest, ".complete"), f"artifact {digest} at {path}"))
        except FileNotFoundError:
            raise NotFound(f"artifact {digest} is missing at {path}") from None
        return data.decode().split("\n")

    # ------------------------------------------------------------ sealing
    def reseal(self) -> Resealed:
        """Seal every stored object not sealed with the current key (plaintext, or under an older key of the key file).

        Each object is read and verified, then replaced whole; readers keep working throughout, as
        long as the key file still holds every key that sealed something.
        """
        if self.keys is None:
            raise ConfigError("no at-rest key is configured, so there is nothing to seal with",
                              hint="set TUNELINE_AT_REST_KEY_FILE (make a key with `tuneline keys at-rest-init`)")
        blobs = trees = current = 0
        # The working copies are plaintext: a private temporary folder, emptied after each object.
        with tempfile.TemporaryDirectory(prefix="tuneline-reseal-") as tmp:
            for path in self._objects("blobs/sha256/*/*"):
                if self._stored(path):
                    current += 1
                    continue
                copy = self.fetch_file(ev.ArtifactRef(digest="sha256:" + path.rsplit("/", 1)[1]), Path(tmp) / "blob")
                self.put_file(copy)
                copy.unlink()
                blobs += 1
            for path in self._objects("trees/sha256/*"):
                if self._stored(f"{path}/.complete"):
                    current += 1
                    continue
                if not self.fs.exists(f"{path}/.complete"):
                    continue  # a tree still being written in place (object stores): there is nothing to seal yet
                self._reseal_tree("sha256:" + path.rsplit("/", 1)[1], path, Path(tmp) / "tree")
                trees += 1
        return Resealed(blobs, trees, current)

    def _reseal_tree(self, digest: str, path: str, tmp: Path) -> None:
        folder = self.fetch_tree(ev.ArtifactRef(digest=digest), tmp)
        self.put_tree([(n, folder / n) for n in self._manifest(digest, path)])
        shutil.rmtree(folder)

    def _objects(self, pattern: str) -> list[str]:
        """Stored objects' paths (temporary and staging names left out)."""
        return [p for p in self.fs.glob(f"{self._base}/{pattern}") if _HEX.fullmatch(p.rsplit("/", 1)[1])]

    def _stored(self, path: str) -> bool:
        """Whether an object is stored as this store writes it now: present, and sealed with the current key if keyed."""
        if self.keys is None:
            return bool(self.fs.exists(path))
        try:
            with self.fs.open(path, "rb") as f:
                return self.keys.seals(read_exact(f, HEADER_BYTES))
        except FileNotFoundError:
            return False

    def _plain(self, src: BinaryIO, aad: bytes, what: str, limit: int = 0) -> Iterator[bytes]:
        """An object's plaintext from its open file, sealed or not, in chunks; `limit` > 0 bounds it.

        An object longer than its declared size is refused after reading one byte more (sealed: one
        segment more), not read to its end. No Tuneline artifact starts with the sealed magic (Parquet,
        JSON, HTML, safetensors, text), so an object that does is sealed: without keys it is refused,
        never handed on as garbage.
        """
        head = read_exact(src, HEADER_BYTES)
        src.seek(0)
        if is_sealed(head):
            if self.keys is None:
                raise no_key(what, head)
            yield from open_stream(self.keys, aad, src, what, limit)
            return
        read = 0
        while chunk := src.read(min(_CHUNK, limit + 1 - read) if limit > 0 else _CHUNK):
            read += len(chunk)
            if 0 < limit < read:
                raise IntegrityError(f"{what} is longer than its declared {limit} bytes")
            yield chunk

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

    def _atomic_stream(self, path: str, chunks: Iterable[bytes]) -> None:
        if self.local:
            _local_atomic(Path(path), lambda f: f.writelines(chunks))
        else:  # staged whole (sealed bytes only) and put as one object
            with tempfile.TemporaryDirectory(prefix="tuneline-put-") as tmp:
                with open(Path(tmp) / "object", "wb") as f:
                    f.writelines(chunks)
                self.fs.put_file(str(Path(tmp) / "object"), path)

    def _write_tree(self, files: Sequence[tuple[str, str | Path]], digest: str, folder: str) -> None:
        manifest = "\n".join(n for n, _ in files).encode()
        if self.keys is None:
            for name, src in files:
                self._put_plain(Path(src), f"{folder}/{name}")
            self._put_plain_bytes(manifest, f"{folder}/.complete")
            return
        for name, src in files:
            self._atomic_stream(f"{folder}/{name}", seal_file(self.keys.current, _tree_aad(digest, name), Path(src)))
        self._atomic_stream(f"{folder}/.complete", [seal_bytes(self.keys.current, _tree_aad(digest, ".complete"), manifest)])

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

    @staticmethod
    def _publish_dir(staging: str, path: str) -> None:
        """A local staging folder renamed into place (object stores write trees in place, manifest last)."""
        try:
            os.replace(staging, path)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another writer got there first


def _local_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _blob_aad(digest: str) -> bytes:
    """What a sealed blob is bound to: its digest, so one blob's sealed bytes do not open as another's."""
    return b"blob\0" + digest.encode()


def _tree_aad(digest: str, name: str) -> bytes:
    """What a sealed tree file is bound to: the tree's digest and the file's name."""
    return b"tree\0" + digest.encode() + b"\0" + name.encode()


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
