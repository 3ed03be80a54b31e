"""Files written whole or not at all: the one atomic writer of the helpers.

Records, saved weights, resume backups and decoded-image caches are all written through
:func:`atomic_path`: the writer fills a temporary file in the target's folder, which is renamed
over the target only once it is complete. A crash, an interrupt or a full disk leaves the old
file (or none), never half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = ".tmp-"  # temporary files are ``.tmp-<random>-<target name>`` beside the target


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` when the block succeeds.

    The temporary file ends with the target's name (so writers that check suffixes, such as
    ``model.save_weights(...)`` which wants ``.weights.h5``, accept it) and exists, empty, when
    the block starts. On any exception it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=f"-{path.name}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, content: str | bytes) -> None:
    """Write ``content`` (text as UTF-8, or bytes) to ``path``: the whole of it or nothing."""
    with atomic_path(path) as tmp:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
