"""A persistent store of every (mask → value) already paid for, in one SQLite file.

Model calls are the cost of an explanation, so what was paid for must survive
the process: :class:`MaskStore` writes each batch of values in one transaction
as it arrives (SQLite in WAL mode: a crash, Ctrl-C or ``kill -9`` loses at
most the batches still being computed), and a rerun of the same explanation
reads them back instead of calling the model again. Several processes may
write to one file at once (SQLite serialises the writers).

The file belongs to one value function, named by a *fingerprint*: a string
the caller chooses (model, input, target), stored in the file when it is
created and checked whenever it is opened, so values of one model are never
served for another. A mask whose newly computed value differs from the one
already stored (a nondeterministic model, or two runs racing) is reported
with a :class:`NondeterminismWarning`; the stored value is kept, so every run
sharing the file sees the same numbers.

Examples:
    >>> import numpy as np, tempfile, os
    >>> from proxyspex_captum.core.cache import MaskStore
    >>> path = os.path.join(tempfile.mkdtemp(), "values.sqlite")
    >>> masks = np.array([[1, 0, 1], [0, 0, 0]], dtype=bool)
    >>> with MaskStore(path, fingerprint="demo", n_features=3) as store:
    ...     stored = store.put(masks, np.array([2.0, 0.0]))
    ...     len(store)
    2
    >>> with MaskStore(path, fingerprint="demo", n_features=3) as store:
    ...     store.get(masks[::-1])
    [array(0.), array(2.)]
"""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .checks import check_int

__all__ = ["MaskStore", "NondeterminismWarning", "describe_width", "open_store"]

# How long a writer waits for another process's transaction before giving up:
# long enough for any batch write, short enough that a stuck file is reported.
BUSY_TIMEOUT_SECONDS = 60.0
# Values that differ by more than this (relative to the larger) count as a
# different answer: last-bit differences of batched float kernels do not.
NONDETERMINISM_RTOL = 1e-6
# SQLite limits the host parameters of one statement (32,766 since 3.32).
_LOOKUP_CHUNK = 900
_SCHEMA_VERSION = "1"


class NondeterminismWarning(UserWarning):
    """The model returned a different value for a mask it had answered before.

    The value stored first is kept (every run sharing the cache sees the same
    numbers). Explanations of a nondeterministic model (sampling at a
    temperature, dropout left on) are fits to noise: make the model
    deterministic, or average several answers per mask in the value function.
    """


class MaskStore:
    """The values of one value function, mask by mask, in an SQLite file.

    Args:
        path: The file (created, with its folder, if missing).
        fingerprint: Names the value function (model, input, target). A file
            created for another fingerprint is refused.
        n_features: Number of features of the masks; checked like the fingerprint.

    Attributes:
        n_outputs: ``None`` for scalar values, the output width for
            multi-output ones, or ``"unknown"`` while the file holds no value.
        conflicts: Masks found with two different values so far (see
            :class:`NondeterminismWarning`).

    Raises:
        ValueError: The file holds another fingerprint or feature count, or is
            not a cache of this library.
        OSError: The file cannot be created or written (checked on opening,
            before any model call).
    """

    def __init__(self, path: str | os.PathLike, *, fingerprint: str, n_features: int) -> None:
        if not isinstance(fingerprint, str) or not fingerprint:
            raise ValueError(
                "The cache's fingerprint must be a non-empty string naming the value function "
                f"(model, input, target), got {fingerprint!r}."
            )
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.n_features = check_int("n_features", n_features, 1)
        self.conflicts = 0
        self.part = 0
        self._lock = threading.RLock()
        self._db = self._connect()
        try:
            self._check_identity()
        except BaseException:
            self._db.close()
            raise

    # -- opening -----------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise OSError(f"The cache path {str(self.path)!r} is a folder; give a file name.")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection, used under self._lock: any thread of this process may
            # read or write (each SQLite statement sequence stays whole).
            db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as err:
            raise OSError(f"Cannot open the cache file {str(self.path)!r}: {err}.") from err
        try:
            # Another program's SQLite file is refused before anything is written to it
            # (the rows below were added to any file with a "meta" table).
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            ours = (
                "meta" in tables
                and db.execute("SELECT 1 FROM meta WHERE key = 'schema'").fetchone()
            )
            if tables and not ours:
                raise sqlite3.DatabaseError(f"it holds other tables: {sorted(tables)[:5]}")
            db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a committed batch survives a killed process (only a power
            # loss can drop the last transactions), at a fraction of FULL's fsyncs.
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")  # proves the file is writable, before any call
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS mask_values (part INTEGER, mask BLOB, value BLOB,"
                " PRIMARY KEY (part, mask)) WITHOUT ROWID"
            )
            for key, value in (
                ("schema", _SCHEMA_VERSION),
                ("fingerprint", self.fingerprint),
                ("n_features", str(self.n_features)),
            ):
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            db.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            db.close()
            raise ValueError(
                f"{str(self.path)!r} is not a cache file this library can use ({err}): "
                "give another path, or delete the file."
            ) from err
        return db

    def _check_identity(self) -> None:
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if meta.get("schema") != _SCHEMA_VERSION:
            raise ValueError(
                f"The cache file {str(self.path)!r} was written by another version of this "
                f"library (schema {meta.get('schema')!r}); give another path."
            )
        if meta["fingerprint"] != self.fingerprint:
            raise ValueError(
                f"The cache file {str(self.path)!r} holds the values of another value function "
                f"(fingerprint {meta['fingerprint']!r}, this one is {self.fingerprint!r}). Use "
                "another file per explanation, or the same fingerprint to resume a run."
            )
        if int(meta["n_features"]) != self.n_features:
            raise ValueError(
                f"The cache file {str(self.path)!r} holds masks of {meta['n_features']} "
                f"features; this explanation has {self.n_features}."
            )

    # -- reading and writing -----------------------------------------------------

    @property
    def n_outputs(self) -> int | str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'n_outputs'").fetchone()
        if row is None:
            return "unknown"
        return None if row[0] == "scalar" else int(row[0])

    def __len__(self) -> int:
        """Number of masks stored in this part."""
        query = "SELECT COUNT(*) FROM mask_values WHERE part = ?"
        with self._lock:
            return int(self._db.execute(query, (self.part,)).fetchone()[0])

    def section(self, part: int) -> MaskStore:
        """A view of the same file for part ``part`` of an explanation (one example of a batch).

        One fingerprint names a whole call (a Captum batch of inputs); each
        example's masks are kept apart under its own part number.
        """
        view = object.__new__(MaskStore)
        view.__dict__.update(self.__dict__)
        view.part = check_int("part", part, 0)
        return view

    def _keys(self, masks: np.ndarray) -> list[bytes]:
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != self.n_features:
            raise ValueError(f"masks must have shape (k, {self.n_features}), got {masks.shape}.")
        packed = np.packbits(masks, axis=1)
        return [row.tobytes() for row in packed]

    def get(self, masks: np.ndarray) -> list[np.ndarray | None]:
        """The stored value of each mask (a 0-d or 1-d float array), ``None`` where missing."""
        keys = self._keys(masks)
        found: dict[bytes, bytes] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT mask, value FROM mask_values WHERE part = ? AND mask IN ({marks})"
            with self._lock:
                found.update(self._db.execute(query, [self.part, *chunk]))
        scalar = self.n_outputs is None
        out: list[np.ndarray | None] = []
        for key in keys:
            blob = found.get(key)
            if blob is None:
                out.append(None)
            else:
                value = np.frombuffer(blob, dtype="<f8").astype(float)
                out.append(value.reshape(()) if scalar else value)
        return out

    def put(self, masks: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Store one batch in one transaction; returns the values as stored.

        Where a mask is already stored (another writer got there first), the
        stored value wins and is returned in its row; a value that differs
        from it beyond rounding raises a :class:`NondeterminismWarning`.
        """
        values = np.asarray(values, dtype=float)
        keys = self._keys(masks)
        if values.shape[0] != len(keys) or values.ndim not in (1, 2):
            raise ValueError(f"Got values of shape {values.shape} for {len(keys)} masks.")
        width = "scalar" if values.ndim == 1 else str(values.shape[1])
        blobs = [np.ascontiguousarray(v, dtype="<f8").tobytes() for v in values]
        with self._lock:
            inserted = self._insert(keys, blobs, width)
        if inserted == len(keys):
            return values
        return self._reconcile(masks, values)

    def _insert(self, keys: list[bytes], blobs: list[bytes], width: str) -> int:
        """One transaction: check the output width, insert the new rows; returns their count."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('n_outputs', ?)", (width,))
            stored = self._db.execute("SELECT value FROM meta WHERE key = 'n_outputs'")
            stored_width = stored.fetchone()[0]
            if stored_width != width:
                raise ValueError(
                    f"The cache file {str(self.path)!r} holds values of "
                    f"{describe_width(stored_width)}; the model now returns "
                    f"{describe_width(width)}."
                )
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO mask_values VALUES (?, ?, ?)",
                ((self.part, key, blob) for key, blob in zip(keys, blobs, strict=True)),
            )
            inserted = self._db.total_changes - before
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return inserted

    def _reconcile(self, masks: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Rows that were stored already: keep the stored value, warn where it differs."""
        stored = np.stack(self.get(masks)).reshape(values.shape)
        scale = np.maximum(np.abs(stored), np.abs(values))
        differs = (np.abs(stored - values) > NONDETERMINISM_RTOL * scale).reshape(len(values), -1)
        rows = np.flatnonzero(differs.any(axis=1))
        if len(rows):
            self.conflicts += len(rows)
            gap = float(np.max(np.abs(stored - values).reshape(len(values), -1)[rows]))
            warnings.warn(
                NondeterminismWarning(
                    f"The model returned different values for {len(rows)} mask(s) it had "
                    f"answered before (largest difference {gap:.3g}; cache "
                    f"{str(self.path)!r}). The first values are kept. Is the model sampling, "
                    "or in training mode?"
                ),
                stacklevel=3,
            )
        return stored

    # -- lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Close the file (values already written stay), and every section of it."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> MaskStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MaskStore({str(self.path)!r}, fingerprint={self.fingerprint!r})"


def describe_width(n_outputs: int | str | None) -> str:
    """Output width in words: ``None`` (or the file's ``"scalar"``) is one number per mask."""
    if n_outputs is None or n_outputs == "scalar":
        return "one number per mask"
    return f"{n_outputs} outputs per mask"


def open_store(
    cache: str | os.PathLike | MaskStore | None, fingerprint: str | None, n_features: int
) -> MaskStore | None:
    """``cache=`` as the estimators take it: a path, an open :class:`MaskStore`, or ``None``."""
    if cache is None:
        if fingerprint is not None:
            raise ValueError("fingerprint= names the values of cache=; pass a cache path too.")
        return None
    if isinstance(cache, MaskStore):
        if fingerprint is not None and fingerprint != cache.fingerprint:
            raise ValueError(
                f"The MaskStore was opened for fingerprint {cache.fingerprint!r}, "
                f"not {fingerprint!r}."
            )
        if cache.n_features != n_features:
            raise ValueError(
                f"The MaskStore holds masks of {cache.n_features} features, not {n_features}."
            )
        return cache
    if not isinstance(cache, (str, os.PathLike)):
        raise TypeError(f"cache must be a file path or a MaskStore, got {type(cache).__name__}.")
    if fingerprint is None:
        raise ValueError(
            "cache= needs a fingerprint naming the value function (e.g. model name, input "
            "and target), so that values of one explanation are never served for another: "
            "pass fingerprint='...'."
        )
    return MaskStore(cache, fingerprint=fingerprint, n_features=n_features)
