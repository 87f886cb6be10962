"""Files written atomically (a temporary name in the same folder, fsync, then ``os.replace``: a
reader sees the old file or the whole new one, never half of it) and sample arrays read safely
(never unpickled)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .messages import one_line

__all__ = [
    "file_mode",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_savez",
    "atomic_path",
    "load_samples",
    "read_json",
    "check_writable",
    "output_folder",
    "file_sha256",
]

TMP_SUFFIX = ".tmp"  # temporary files are ``.<name>.<random>.tmp`` beside their target


def file_mode() -> int:
    """The mode a plain ``open`` would give a new file (``0o666`` less the umask): ``mkstemp``'s
    temp files are ``0o600``, which would make every output private to its writer."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *, sync_folder: bool = False) -> Path:
    """Write ``path`` through ``write(fh)`` on a temporary file in its folder, then rename it over ``path``.

    The bytes are on disk (``fsync``) before the name points at them; ``sync_folder`` also makes the
    rename itself durable (POSIX), for files whose presence commits something (checkpoints). The
    folder is created if missing; on any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_folder:
        _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, sync_folder: bool = False) -> Path:
    return atomic_write(path, lambda fh: fh.write(data), sync_folder=sync_folder)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | os.PathLike, obj, *, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent) + "\n")


def atomic_savez(path: str | os.PathLike, **arrays) -> Path:
    """``np.savez`` to exactly ``path`` (no ``.npz`` appended), atomically."""
    return atomic_write(path, lambda fh: np.savez(fh, **arrays))


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path with ``path``'s suffix in its folder, for writers that want a file name
    (safetensors, animation writers); renamed onto ``path`` on success, removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_samples(path: str | os.PathLike) -> np.ndarray:
    """The ``samples`` array of an ``.npz`` written by ``scoredyn sample``, or a ``.npy`` array.

    Raises ValueError (one clear line) for a missing file, a file that is neither, an array that is
    not ``(M, D)``, or NaN/inf. Never unpickles.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if "samples" not in loaded.files:
                    raise ValueError(f"{path} has no 'samples' array (it has: {', '.join(loaded.files) or 'nothing'})")
                arr = loaded["samples"]
        else:
            arr = loaded
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path} is not a .npz or .npy file ({one_line(e, 120)})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:  # truncated or garbage archives
        raise ValueError(f"{path} is not a .npz or .npy file ({one_line(e, 120)})") from None
    except MemoryError:  # a header declaring more rows than memory holds (a lying or an enormous file)
        raise ValueError(f"the array in {path} does not fit in memory (its header: {_declared_shape(path)})") from None
    if not isinstance(arr, np.ndarray):  # an archive member that is not a NumPy array comes back as bytes
        raise ValueError(f"the 'samples' member of {path} is not a NumPy array")
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"samples in {path} must have shape (M, D), got {arr.shape}")
    if arr.dtype.kind not in "biuf":  # complex numbers are refused, not scored on their real part
        raise ValueError(f"samples in {path} are not real numbers (dtype {arr.dtype})")
    if not np.isfinite(arr).all():
        raise ValueError(f"samples in {path} contain NaN or inf")
    return arr.astype(np.float64)


def _declared_shape(path: Path) -> str:
    """The shape a ``.npy`` file's (or an ``.npz``'s ``samples`` member's) header declares, read alone."""
    try:
        with zipfile.ZipFile(path) as z, z.open("samples.npy") as fh:
            return str(_npy_header_shape(fh))
    except zipfile.BadZipFile:
        with open(path, "rb") as fh:
            return str(_npy_header_shape(fh))


def _npy_header_shape(fh) -> tuple[int, ...]:
    major, _ = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    return read(fh)[0]


def check_writable(path: str | os.PathLike) -> Path:
    """``path``, after checking that a file can be written there, before a long job computes it: the
    ``OSError`` the write would raise (a folder in its place, a missing or read-only folder, ``/proc``)
    comes now. The probe is a temporary file beside it, created and removed."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as e:  # named by the output asked for, not by the probe
        raise type(e)(e.errno, e.strerror, str(path)) from None
    os.close(fd)
    os.unlink(probe)
    return path


@contextmanager
def output_folder(path: str | os.PathLike) -> Iterator[Path]:
    """The folder ``path``, made (with its parents) for the outputs written inside the block; if the
    block fails, the folders it made are removed again where they are still empty, so a failed run
    leaves nothing behind (what it wrote is whole or absent: writes inside are atomic)."""
    path = Path(path)
    made = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in made:  # deepest first
            with suppress(OSError):
                folder.rmdir()
        raise


def read_json(path: str | os.PathLike, what: str = "JSON file"):
    """The JSON value in ``path``, or a ValueError (one line naming the file) for every way it can fail to
    be one: missing, unreadable (a folder, no permission), not UTF-8, not JSON, or nested too deeply for
    the parser (``[[[...]]]`` 100,000 deep overflows its recursion, a ``RecursionError``)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        why = e.strerror or str(e)
    except UnicodeDecodeError:
        why = "not UTF-8 text"
    except json.JSONDecodeError as e:
        why = f"not valid JSON ({e.msg}, line {e.lineno})"
    except RecursionError:
        why = "nested too deeply to parse"
    raise ValueError(f"cannot read {what} {path}: {why}")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
