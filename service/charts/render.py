"""A Vega-Lite specification rendered to SVG on the server, by vl-convert (Vega in an
embedded JavaScript engine: no browser), off the event loop."""

from __future__ import annotations

import html
import re
from typing import Final

import anyio.to_thread
import vl_convert

from service.charts.spec import Spec

VEGA_LITE: Final = "5.21"  # the Vega-Lite the specifications are written for
# A mark item, self-closing; those Vega labelled for screen readers carry aria-label.
_ITEM: Final = re.compile(r"<(path|line)(\s[^<>]*?)/>")
_LABEL: Final = re.compile(r'\saria-label="([^"]*)"')


def svg_now(spec: Spec, theme: str = "light") -> str:
    """The SVG of `spec` (blocking: vl-convert renders on its own worker)."""
    drawn = vl_convert.vegalite_to_svg(
        spec, vl_version=VEGA_LITE, theme="dark" if theme == "dark" else None
    )
    return _titled(drawn)


async def svg(spec: Spec, theme: str = "light") -> str:
    """The SVG of `spec`, rendered in a worker thread."""
    return await anyio.to_thread.run_sync(svg_now, spec, theme)


def _titled(drawn: str) -> str:
    """Each labelled mark also gets a <title>: browsers show it as its tooltip."""

    def titled(found: re.Match[str]) -> str:
        tag, attributes = found.groups()
        label = _LABEL.search(attributes)
        if label is None or 'role="graphics-symbol"' not in attributes:
            return found.group(0)
        title = html.escape(html.unescape(label.group(1)), quote=False)
        return f"<{tag}{attributes}><title>{title}</title></{tag}>"

    return _ITEM.sub(titled, drawn)
