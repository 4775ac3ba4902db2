"""The package's cache folder and small remembered choices in it (a measured batch size, ...).

A remembered choice is only a speed-up: a cache that cannot be read or written is ignored."""

from __future__ import annotations

import hashlib
import json
import os

from landscape.io.files import replacing


def cache_dir() -> str:
    """``$LANDSCAPE_CACHE``, else ``$XDG_CACHE_HOME/landscape``, else ``~/.cache/landscape``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("LANDSCAPE_CACHE") or os.path.join(base, "landscape")


def _path(table: str) -> str:
    return os.path.join(cache_dir(), f"{table}.json")


def _key(key) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:32]


def recall(table: str, key):
    """What :func:`remember` stored under ``key`` in ``table``, or None."""
    try:
        with open(_path(table), encoding="utf-8") as f:
            entries = json.load(f)
        return entries.get(_key(key)) if isinstance(entries, dict) else None
    except (OSError, ValueError):
        return None


def remember(table: str, key, value, limit: int = 1000) -> None:
    """Store the JSON value ``value`` under ``key`` (any JSON-able description) in ``table``;
    the oldest entries go beyond ``limit``. Written atomically; failures are ignored."""
    try:
        os.makedirs(cache_dir(), exist_ok=True)
        try:
            with open(_path(table), encoding="utf-8") as f:
                entries = json.load(f)
            entries = entries if isinstance(entries, dict) else {}
        except (OSError, ValueError):
            entries = {}
        entries.pop(_key(key), None)
        entries[_key(key)] = value
        entries = dict(list(entries.items())[-limit:])
        with replacing(_path(table)) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(entries, f)
    except Exception:  # noqa: BLE001 - the cache is only a speed-up
        pass


__all__ = ["cache_dir", "recall", "remember"]
