"""A dataset uploaded as one zip: cell images, class subfolders and an optional ``labels.csv``.

Bounded before anything is written: the number of members, each member's and the total
uncompressed size (the ``uploads.max_mb`` setting), and the compression ratio (zip bombs).
Only image files, ``labels.csv`` and class subfolders are extracted; every member name is
reduced to safe parts (no absolute paths, no ``..``, no links), so nothing lands outside
the target folder.

>>> import io, zipfile, tempfile
>>> buffer = io.BytesIO()
>>> with zipfile.ZipFile(buffer, "w") as z:
...     z.writestr("cells/TN_1.jpg", b"x" * 10)
...     z.writestr("cells/labels.csv", "image,label\\nTN_1.jpg,normal\\n")
...     z.writestr("../evil.jpg", b"x")
...     z.writestr("notes.txt", b"skip me")
>>> folder = tempfile.mkdtemp()
>>> extract_dataset_zip(buffer.getvalue(), folder, max_bytes=1000, max_files=10)
['TN_1.jpg', 'evil.jpg', 'labels.csv']
"""
from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from core.config import IMAGE_SUFFIXES
from core.errors import DisplasiaError

MAX_FILES = 50_000
MAX_RATIO = 200          # uncompressed / compressed per member; JPEGs hardly compress
_SAFE = re.compile(r"[^A-Za-z0-9._ -]")


def upload_limits() -> dict:
    """The limits of :func:`extract_dataset_zip` from the settings (``uploads.max_mb``)."""
    from core.settings import load_settings

    return {"max_bytes": int(load_settings().uploads.max_mb * 2**20), "max_files": MAX_FILES}


def _safe_parts(name: str) -> list[str]:
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    return [_SAFE.sub("_", p)[:200] for p in parts]


def extract_dataset_zip(data, folder, *, max_bytes: int, max_files: int = MAX_FILES) -> list[str]:
    """Extract the cells of a zip (bytes or path) into ``folder``; return the names written.

    The zip's common top folder is dropped; class subfolders (``normal/``, ``dysplastic/``)
    are kept; ``labels.csv`` (anywhere at the top of the dataset) is kept. Raises
    DisplasiaError (one line) for a file that is not a zip, one over the limits, or one
    without any image.
    """
    from core.datasets import FOLDER_CLASSES

    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise DisplasiaError("The upload is not a valid zip file.") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > max_files:
            raise DisplasiaError(f"The zip holds {len(members):,} files; at most {max_files:,} are accepted.")
        wanted = []
        for member in members:
            parts = _safe_parts(member.filename)
            if not parts or parts[-1].startswith(".") or "__MACOSX" in parts:
                continue
            suffix = Path(parts[-1]).suffix.lower()
            if suffix in IMAGE_SUFFIXES or parts[-1].lower() == "labels.csv":
                wanted.append((member, parts))
        if not wanted:
            raise DisplasiaError("The zip holds no cell images (jpg, jpeg, png, tif, bmp).")
        total = sum(m.file_size for m, _ in wanted)
        if total > max_bytes:
            raise DisplasiaError(f"The zip's images add up to {total / 2**20:.0f} MiB uncompressed; "
                                 f"the limit is {max_bytes / 2**20:.0f} MiB.")
        for member, _ in wanted:
            if member.flag_bits & 0x1:
                raise DisplasiaError(f"{member.filename[:80]} in the zip is password-protected; upload it unencrypted.")
            if member.file_size > MAX_RATIO * max(member.compress_size, 1) and member.file_size > 2**20:
                raise DisplasiaError(f"{member.filename[:80]} is compressed suspiciously well (a zip bomb?).")
        # Drop the common top folder unless it is a class folder.
        tops = {parts[0] for _, parts in wanted if len(parts) > 1}
        strip = len(tops) == 1 and all(len(p) > 1 for _, p in wanted) and next(iter(tops)).lower() not in FOLDER_CLASSES
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        written, budget = [], max_bytes
        for member, parts in wanted:
            parts = parts[1:] if strip else parts
            if len(parts) > 1 and parts[-2].lower() in FOLDER_CLASSES:
                parts = [parts[-2], parts[-1]]
            else:
                parts = [parts[-1]]
            target = root.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as dst:
                    while block := src.read(1 << 20):          # the declared size may lie: count what comes out
                        budget -= len(block)
                        if budget < 0:
                            raise DisplasiaError(f"The zip unpacks to more than {max_bytes / 2**20:.0f} MiB.")
                        dst.write(block)
            except (DisplasiaError, zipfile.BadZipFile, RuntimeError, NotImplementedError, zlib.error,
                    EOFError, OSError) as exc:
                # Encrypted, unknown compression, bad CRC, corrupt data: one line, and no half dataset left.
                for name in written + ["/".join(parts)]:
                    root.joinpath(*name.split("/")).unlink(missing_ok=True)
                if isinstance(exc, DisplasiaError):
                    raise
                raise DisplasiaError(f"{member.filename[:80]} in the zip cannot be unpacked "
                                     f"({type(exc).__name__}: {str(exc)[:80]}).") from None
            written.append("/".join(parts))
    return sorted(written)
