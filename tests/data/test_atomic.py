"""data.atomic: the one writer; a file appears whole or not at all, and a failed write leaves the old one."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from saliency_widget.data.atomic import replacing, write_atomic, write_json


@pytest.mark.parametrize(("data", "expected"), [("héllo", "héllo".encode()), (b"\x00\x01", b"\x00\x01")], ids=["text-utf8", "bytes"])
def test_write_atomic_writes_and_replaces(data: str | bytes, expected: bytes, tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"old contents")
    assert write_atomic(p, data) == p
    assert p.read_bytes() == expected
    assert sorted(x.name for x in tmp_path.iterdir()) == ["f"]  # no temporary file left


def test_write_json_indents_and_passes_options(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]}, sort_keys=True)
    text = (tmp_path / "a.json").read_text()
    assert text == json.dumps({"a": [1, 2], "b": 1}, indent=1, sort_keys=True)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    p = tmp_path / "state.pt"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"), replacing(p) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("disk on fire")
    assert p.read_bytes() == b"old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["state.pt"]


def test_a_path_writer_goes_through_replacing(tmp_path: Path) -> None:
    with replacing(tmp_path / "t.pt") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".t.pt.tmp")
        torch.save({"x": torch.arange(3)}, tmp)
    torch.testing.assert_close(torch.load(tmp_path / "t.pt", weights_only=True)["x"], torch.arange(3))


def test_threads_writing_one_file_never_leave_a_mix(tmp_path: Path) -> None:
    p = tmp_path / "shared.json"
    payloads = [{"writer": i, "data": [i] * 5000} for i in range(8)]
    threads = [threading.Thread(target=write_json, args=(p, d)) for d in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert json.loads(p.read_text()) in payloads  # one whole payload, whichever came last
    assert sorted(x.name for x in tmp_path.iterdir()) == ["shared.json"]
