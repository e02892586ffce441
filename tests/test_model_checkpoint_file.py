"""Checkpoints are verified on load (archive CRCs, recorded weights checksum) and labelled
from their metadata without torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from data_catalog.errors import FormatError
from data_catalog.locations import checkpoint_dir as default_checkpoint_dir
from model import checkpoint_file
from model.wrapper import GapFiller, weights_sha256

SHIPPED = default_checkpoint_dir()


def _largest_weights(path: Path) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as zf:
        return max((i for i in zf.infolist() if "/data/" in i.filename),
                   key=lambda i: i.file_size)


def flip_bytes(path: Path, n: int = 3) -> None:
    """Flip ``n`` bytes in the middle of the largest weight tensor, archive untouched."""
    info = _largest_weights(path)
    raw = bytearray(path.read_bytes())
    # local file header: 30 bytes + file name + extra field, then the stored data
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    for k in range(n):
        raw[start + 4 * k] ^= 0x40
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("name", ["amsr2.pt", "amsre.pt"])
def test_shipped_checkpoints_pass_verification(name):
    checkpoint_file.check_archive(SHIPPED / name)  # written before weights_sha256 existed
    GapFiller.load(SHIPPED / name)


def test_flipped_bytes_in_the_weights_are_refused(tmp_path):
    bad = tmp_path / "amsr2.pt"
    shutil.copy(SHIPPED / "amsr2.pt", bad)
    flip_bytes(bad)
    with pytest.raises(FormatError, match="CRC-32") as err:
        GapFiller.load(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_recorded_weights_checksum_catches_a_rewritten_archive(tmp_path):
    m = GapFiller.load(SHIPPED / "amsr2.pt")
    path = tmp_path / "m.pt"
    m.save(path)
    blob = torch.load(path, weights_only=True)
    assert blob["metadata"]["weights_sha256"] == weights_sha256(blob["state_dict"])
    GapFiller.load(path)
    # the same metadata with one weight changed, written by torch.save: the CRCs are new
    key = next(k for k in blob["state_dict"] if k.endswith("weight"))
    blob["state_dict"][key] = blob["state_dict"][key] + 0.02
    torch.save(blob, path)
    with pytest.raises(FormatError, match="checksum recorded") as err:
        GapFiller.load(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content", [b"<!DOCTYPE html><html><body>404</body></html>\n" * 20,
                                     b"", b"PK\x03\x04garbage" * 50])
def test_html_empty_or_garbage_is_one_line(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(FormatError) as err:
        GapFiller.load(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and len(msg) < 300


def test_truncated_checkpoint_is_refused(tmp_path):
    path = tmp_path / "t.pt"
    path.write_bytes((SHIPPED / "amsr2.pt").read_bytes()[:50_000])
    with pytest.raises(FormatError):
        GapFiller.load(path)


def test_labels_come_from_metadata_without_torch():
    code = ("import sys; from model.checkpoint_file import read_metadata, label; "
            f"print(label(read_metadata({str(SHIPPED / 'amsr2.pt')!r}))); "
            f"print(label(read_metadata({str(SHIPPED / 'amsre.pt')!r}))); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1]).stdout.split("\n")
    assert out[0] == "AMSR2 base model (trained 2013-2020)"
    assert out[1] == "AMSR-E transferred from AMSR2 (trained 2003-2008)"
    assert out[2] == "False"


def test_metadata_reader_refuses_other_globals(tmp_path):
    import pickle

    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", pickle.dumps({"format": "x", "f": print}, protocol=2))
    with pytest.raises(FormatError, match="not allowed"):
        checkpoint_file.read_metadata(path)
