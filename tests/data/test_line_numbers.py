"""Line numbers count only "\\n" (issue 19, item 8): str.splitlines also splits on \\x0c,
\\x85 and U+2028, which shifted reported lines and broke names holding those characters."""

import pytest

from spiraljax.data import load_edges


def test_form_feed_does_not_shift_the_reported_line(tmp_path):
    p = tmp_path / "e.tsv"
    p.write_text("a\tb\x0c\nc\tc\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r":2: self-loop"):
        load_edges(p)


def test_name_with_line_separator_is_one_line(tmp_path):
    p = tmp_path / "e.tsv"
    p.write_text("a\u2028x\tb\nb\tc\x85d\n", encoding="utf-8")
    graph = load_edges(p)
    assert "a\u2028x" in graph.names and "c\x85d" in graph.names
