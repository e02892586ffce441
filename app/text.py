"""User text is text, never markup: the one escaping helper of the app.

Panel renders notifications, ``HTML`` panes, ``Markdown`` panes and alerts as HTML, so any
string that may quote something a user sent (a URL parameter, a forged widget value, an
exception message that repeats its input) is escaped here before it reaches one of them.
Messages are escaped at the sink (``Explorer.notify``, the status panes), not where they
are written, so a new message cannot forget it.

Sinks that need nothing from here (audited for issue 17): table cells (Panel's Tabulator
formats strings with Bokeh's ``StringFormatter``, which builds a text node), hover
tooltips (Bokeh escapes ``@field`` values unless a column is marked ``{safe}``, which
this app never does) and plot titles (drawn on the canvas as text).  Widget labels and
options are the app's own strings, never user input.
"""

from __future__ import annotations

import html
import re

#: Markdown's inline punctuation; escaped with a backslash so that ``*``, ``_``, ``[``... in
#: a quoted value neither format the text nor build a link.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def as_html(value) -> str:
    """``value`` as HTML text: ``<``, ``>``, ``&`` and both quotes become entities."""
    return html.escape(str(value), quote=True)


def as_markdown(value) -> str:
    """``value`` as Markdown text: ``<``, ``>`` and ``&`` as entities (quotes are plain
    text in Markdown and left alone, so no entity holds a ``#``), then Markdown
    punctuation backslashed."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(str(value), quote=False))
