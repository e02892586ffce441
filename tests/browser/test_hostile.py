"""Hostile links: what a URL carries is shown as text and never runs in the page."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.browser.conftest import open_app

#: an HTML payload whose handler, if the browser ever parsed it, records that it ran
PAYLOAD = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'

#: the text the page should show of it (part of the payload, as a user would read it)
SHOWN = 'onerror="window.__xss'


def _xss_ran(page) -> bool:
    return bool(page.evaluate("() => window.__xss || 0"))


@pytest.mark.parametrize("param", ["station", "date", "source", "region"])
def test_html_in_a_url_parameter_is_shown_as_text(server, page, param):
    open_app(page, server["url"], f"?{param}={quote(PAYLOAD)}")
    # the notification quotes the payload: as text, so the text is found in the page
    page.get_by_text(SHOWN).first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # an image error handler would have fired by now
    assert not _xss_ran(page)
