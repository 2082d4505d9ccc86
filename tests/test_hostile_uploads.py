"""Hostile corpus, uploaded dataset zips: every crafted archive is refused with one line and
leaves nothing behind in the session's folder; names cannot escape it."""
from __future__ import annotations

import io
import stat
import zipfile

import pytest

from core.dataset_zip import extract_dataset_zip
from core.errors import DisplasiaError


def zip_bytes(members: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as z:
        for name, data in members.items():
            if isinstance(data, zipfile.ZipInfo):
                z.writestr(data, b"/etc/passwd")
            else:
                z.writestr(name, data)
    return buffer.getvalue()


def patched(data: bytes, *, local: int, central: int, xor: int = 0, value: int | None = None) -> bytes:
    """Change one byte of the (single) member's local and central headers."""
    out = bytearray(data)
    cd = out.rfind(b"PK\x01\x02")
    for offset in (local, cd + central):
        out[offset] = value if value is not None else out[offset] ^ xor
    return bytes(out)


GOOD = zip_bytes({"TN_1.jpg": b"x" * 5000})
LINK = zipfile.ZipInfo("TN_link.jpg")
LINK.external_attr = (stat.S_IFLNK | 0o777) << 16

CASES = [
    ("not-a-zip", b"GIF89a not a zip", "not a valid zip"),
    ("empty", b"", "not a valid zip"),
    ("no-images", zip_bytes({"notes.txt": b"x", "run.sh": b"rm -rf /"}), "no cell images"),
    ("encrypted-flag", patched(GOOD, local=6, central=8, xor=1), "password-protected"),
    ("unknown-compression", patched(GOOD, local=8, central=10, value=99), "cannot be unpacked"),
    ("bad-crc", patched(GOOD, local=14, central=16, xor=0xFF), "cannot be unpacked"),
    ("corrupt-deflate", bytes(b ^ 0xFF if i in (40, 45) else b for i, b in enumerate(GOOD)), "cannot be unpacked"),
    ("zip-bomb-ratio", zip_bytes({"TN_1.jpg": b"\0" * (4 * 2**20)}), "zip bomb"),
    ("over-the-size-limit", zip_bytes({"TN_1.jpg": b"x" * 3000, "TN_2.jpg": b"y" * 3000}, zipfile.ZIP_STORED),
     "uncompressed"),
    ("too-many-files", zip_bytes({f"TN_{i}.jpg": b"x" for i in range(30)}), "at most 20"),
]


@pytest.mark.parametrize("case, data, words", CASES, ids=[c[0] for c in CASES])
def test_hostile_dataset_zips_are_refused_and_leave_nothing(tmp_path, case, data, words):
    target = tmp_path / "session" / "images"
    limit = 64 * 2**20 if case == "zip-bomb-ratio" else 5000
    with pytest.raises(DisplasiaError) as info:
        extract_dataset_zip(data, target, max_bytes=limit, max_files=20)
    message = str(info.value)
    assert words in message and "\n" not in message and len(message) < 300, message
    assert not target.exists() or not any(p.is_file() for p in target.rglob("*"))


@pytest.mark.parametrize("name, landed", [
    ("../../../etc/cron.d/TN_1.jpg", "TN_1.jpg"),
    ("/abs/path/TN_1.jpg", "TN_1.jpg"),
    ("..\\..\\TN_1.jpg", "TN_1.jpg"),
    ("normal/../../TN_1.jpg", "normal/TN_1.jpg"),  # '..' dropped: stays inside, in the class folder
    ("dysplastic/TN_1.jpg", "dysplastic/TN_1.jpg"),
    ("a/b/c/d/normal/TN_1.jpg", "normal/TN_1.jpg"),
    ("TN_<script>.jpg", "TN__script_.jpg"),
], ids=["dotdot", "absolute", "backslashes", "class-then-dotdot", "class-folder", "deep-class", "html-name"])
def test_member_names_cannot_escape_the_folder(tmp_path, name, landed):
    target = tmp_path / "session"
    written = extract_dataset_zip(zip_bytes({name: b"x" * 10, "ZN_2.jpg": b"y"}), target, max_bytes=10_000)
    assert landed in written
    assert all(p.resolve().is_relative_to(target.resolve()) for p in target.rglob("*"))


def test_a_symlink_member_is_written_as_a_plain_file(tmp_path):
    written = extract_dataset_zip(zip_bytes({"TN_link.jpg": LINK}), tmp_path, max_bytes=10_000)
    assert written == ["TN_link.jpg"]
    assert not (tmp_path / "TN_link.jpg").is_symlink()
