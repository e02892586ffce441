"""The escaping helper: user text never becomes markup."""

from __future__ import annotations

import markdown_it

from app.text import as_html, as_markdown

PAYLOAD = '<img src=x onerror="alert(1)"> [x](javascript:alert(1)) **b** &amp; #h'


def test_as_html_leaves_no_tag_and_keeps_the_text():
    out = as_html(PAYLOAD)
    assert "<" not in out and ">" not in out and '"' not in out
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in out


def test_as_markdown_renders_back_to_the_same_text():
    html = markdown_it.MarkdownIt("commonmark", {"html": True}).renderInline(as_markdown(PAYLOAD))
    assert "<img" not in html and "<a " not in html and "<strong>" not in html
    assert html == as_html(PAYLOAD)  # the same characters a reader sees
