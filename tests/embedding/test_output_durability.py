"""Output directories are flushed before they are renamed into place (issue 19, item 12).

A power loss cannot be simulated here; the test records which paths reach ``os.fsync``
(the calls that make the bytes and the rename durable) and checks every written file, the
directory and its parent are among them, in that order relative to the rename.
"""

import os

from spiraljax.embedding.output import atomic_directory


def test_files_and_directories_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def rename(a, b):
        events.append(("rename", str(b)))
        return real_rename(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    target = tmp_path / "out"
    with atomic_directory(target) as tmp:
        (tmp / "metrics.json").write_text("{}")
        (tmp / "embedding.npz").write_bytes(b"x" * 10)
        tmp_name = str(tmp)
    synced_before = [
        p for kind, p in events[: events.index(("rename", str(target)))] if kind == "fsync"
    ]
    assert os.path.join(tmp_name, "metrics.json") in synced_before
    assert os.path.join(tmp_name, "embedding.npz") in synced_before
    assert tmp_name in synced_before
    after = events[events.index(("rename", str(target))) + 1 :]
    assert ("fsync", str(tmp_path)) in after
    assert (target / "metrics.json").read_text() == "{}"
