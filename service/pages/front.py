"""The front page: every actor's standing (sortable, with ranges), a country search,
links to each actor's and pair's page, the log's head and the projector's lag, and
the code to embed a page."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from typing import Final

import msgspec

from service.charts.wording import span
from service.incidents.actors import NAMES, NotAnActor, canonical_actor
from service.pages.document import page, policy, text
from service.projections.standings_views import Standing

SCRIPT: Final = files("service.pages").joinpath("copy.js").read_text()
POLICY: Final = policy(SCRIPT)
# The columns the table sorts by: a label, and the figure (descending) or name.
COLUMNS: Final = {
    "name": "Actor",
    "expelled": "Expelled foreign diplomats",
    "own": "Own diplomats expelled",
    "balance": "Balance",
    "incidents": "Incidents",
}


class Log(msgspec.Struct, frozen=True):
    """How far the log and the read models are."""

    head: int
    projected: int


def find(query: str) -> list[str]:
    """The actor codes a search names: a code (alpha-2 or -3), else names containing it."""
    wanted = query.strip()
    if not wanted:
        return []
    try:
        return [canonical_actor(wanted)]
    except NotAnActor:
        folded = wanted.casefold()
        return sorted((code for code, name in NAMES.items() if folded in name.casefold()))


def _key(standing: Standing, sort: str) -> tuple[int, str]:
    figures = standing.expulsions
    value = {
        "expelled": figures.expelled_foreign_diplomats,
        "own": figures.own_diplomats_expelled,
        "balance": figures.balance,
        "incidents": figures.incidents_initiated + figures.incidents_targeted,
    }.get(sort, 0)
    return -value, standing.name


def front(
    standings: Sequence[Standing],
    pairs: Sequence[tuple[str, str]],
    log: Log,
    sort: str,
    query: str,
    found: Sequence[str],
) -> str:
    """The whole page."""
    ordered = sorted(standings, key=lambda s: _key(s, sort))
    body = "\n".join(
        (
            "<header><h1>Legation</h1><p>Diplomatic incidents as newsrooms report them: "
            "every figure with the range its sources allow.</p></header>",
            '<main id="content">',
            _log(log),
            _search(query, found),
            _table(ordered, sort),
            _pairs(pairs),
            _embed(ordered),
            "</main>",
        )
    )
    return page("Legation: diplomatic incidents", body, SCRIPT, "light")


def _log(log: Log) -> str:
    lag = log.head - log.projected
    return (
        f'<p class="known" id="log">The log holds {log.head} events; the standings below '
        f"are at log position {log.projected} (the projector is {lag} behind).</p>"
    )


def _search(query: str, found: Sequence[str]) -> str:
    options = "".join(
        f'<option value="{text(name)}">{code}</option>' for code, name in NAMES.items()
    )
    form = (
        '<form role="search" method="get" action="/"><label for="q">Find a country by name '
        f'or code</label> <input id="q" name="q" list="actors" value="{text(query)}" '
        'autocomplete="off"> <button type="submit">Find</button>'
        f'<datalist id="actors">{options}</datalist></form>'
    )
    if not query:
        return form
    if not found:
        return form + f'<p id="found">No actor matches “{text(query)}”.</p>'
    links = "".join(f"<li>{_actor_link(code)}</li>" for code in found)
    return form + f'<h2 id="found">Actors matching “{text(query)}”</h2><ul>{links}</ul>'


def _actor_link(code: str) -> str:
    return f'<a href="/embed/countries/{code}">{text(NAMES[code])} ({code})</a>'


def _head(column: str, label: str, sort: str) -> str:
    state = (
        (' aria-sort="descending"' if column != "name" else ' aria-sort="ascending"')
        if column == sort
        else ""
    )
    return f'<th scope="col"{state}><a href="/?sort={column}">{text(label)}</a></th>'


def _figure(number: int, low: int | None, high: int | None) -> str:
    if low is None:
        allowed = "unbounded below" if high is None else f"at most {high}"
    else:
        allowed = span(low, high)
    return str(number) if allowed == str(number) else f"{number} ({allowed})"


def _row(standing: Standing) -> str:
    e = standing.expulsions
    cells = (
        _figure(e.expelled_foreign_diplomats, *e.expelled_foreign_diplomats_range),
        _figure(e.own_diplomats_expelled, *e.own_diplomats_expelled_range),
        _figure(e.balance, *e.balance_range),
        str(e.incidents_initiated + e.incidents_targeted),
    )
    numbers = "".join(f'<td class="n">{text(cell)}</td>' for cell in cells)
    return f'<tr><th scope="row">{_actor_link(standing.code)}</th>{numbers}</tr>'


def _table(ordered: Sequence[Standing], sort: str) -> str:
    heads = "".join(_head(column, label, sort) for column, label in COLUMNS.items())
    rows = "".join(_row(standing) for standing in ordered)
    return (
        '<h2 id="standings">Standings</h2><table aria-labelledby="standings">'
        "<caption>Diplomats expelled by and from each actor, with the range the sources "
        "allow in brackets; sort by a column's heading</caption>"
        f"<thead><tr>{heads}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _pairs(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return '<h2 id="pairs">Pairs</h2><p>No expulsions are recorded yet.</p>'
    items = "".join(
        f'<li><a href="/embed/relations/{a}/{b}">{text(NAMES[a])} and {text(NAMES[b])}</a></li>'
        for a, b in pairs
    )
    return f'<h2 id="pairs">Pairs</h2><ul aria-labelledby="pairs">{items}</ul>'


def _embed(ordered: Sequence[Standing]) -> str:
    code = ordered[0].code if ordered else "RU"
    snippet = (
        f'<iframe src="/embed/countries/{code}" title="Diplomats expelled by and from '
        f'{NAMES[code]}" width="720" height="640" loading="lazy"></iframe>'
    )
    return (
        '<h2 id="embed">Embed a page</h2><p>Put this in an article (any actor or pair page '
        "above works the same; add <code>?theme=dark</code>, or <code>known_at</code> for a "
        'page that never changes):</p><label for="snippet" class="visually-hidden">Embed '
        f'code</label><textarea id="snippet" rows="3" readonly>{text(snippet)}</textarea>'
        '<button type="button" id="copy" hidden>Copy</button> '
        '<span id="copied" role="status"></span>'
    )
