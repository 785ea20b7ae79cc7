"""The frame every page shares: escaping, the style, the Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Final

MEDIA_TYPE: Final = "text/html"  # Litestar adds the charset
THEMES: Final = ("light", "dark")

STYLE: Final = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #4d4d4d; --paper: #ffffff;
  --rule: #d0d0d0; --link: #0645ad; }
:root.dark { color-scheme: dark; --ink: #f2f2f2; --muted: #cfcfcf; --paper: #333333;
  --rule: #5a5a5a; --link: #a8c8ff; }
body { margin: 0 auto; max-width: 46rem; padding: 0.75rem 1rem; background: var(--paper);
  color: var(--ink); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 1.2rem; margin: 0 0 0.4rem; } h2 { font-size: 1rem; margin: 1rem 0 0.3rem; }
a { color: var(--link); } p, ol, ul { margin: 0.3rem 0; }
figure { margin: 0.5rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption, .known, footer { color: var(--muted); font-size: 0.85rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { border-bottom: 1px solid var(--rule); padding: 0.25rem 0.4rem; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
textarea { width: 100%; font: 0.85rem ui-monospace, monospace; color: var(--ink);
  background: var(--paper); border: 1px solid var(--rule); }
input, button { font: inherit; }
"""


def text(value: object) -> str:
    """Any value as HTML text or an attribute value, escaped."""
    return html.escape(str(value), quote=True)


def safe_url(url: str | None) -> str | None:
    """A report's URL when it is http(s), escaped for an attribute; else None."""
    if url is None or not url.lower().startswith(("http://", "https://")):
        return None
    return text(url)


def hashed(source: str) -> str:
    """A CSP source for an inline element with exactly this text."""
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def policy(script: str) -> str:
    """The Content-Security-Policy of a page whose only script is `script`.

    Anything may frame the page (it is made to be embedded); it loads nothing from
    anywhere else, and reads only this server (the event stream, its own refresh)."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {hashed(script)}",
            f"style-src {hashed(STYLE)}",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors *",
        )
    )


def page(title: str, body: str, script: str, theme: str, data: str = "") -> str:
    """A whole document: `body` is HTML already escaped; `data` are attributes of <html>."""
    return (
        f'<!DOCTYPE html>\n<html lang="en" class="{text(theme)}"{data}>\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no /favicon.ico request
        f"<title>{text(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n"
        f"<script>{script}</script>\n</body>\n</html>\n"
    )
