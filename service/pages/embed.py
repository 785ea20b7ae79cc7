"""The page a newsroom puts in an article's iframe: the chart, its figures in words,
footnotes, sources, the data behind it, and what it is known at."""

from __future__ import annotations

from importlib.resources import files
from typing import Final
from urllib.parse import urlencode

from service.charts import framing
from service.charts.drawing import Drawn
from service.charts.history import ExpulsionAt
from service.charts.steps import Step
from service.charts.wording import source
from service.pages.document import page, policy, safe_url, text

SCRIPT: Final = files("service.pages").joinpath("live.js").read_text()
POLICY: Final = policy(SCRIPT)


def embed(chart: Drawn, svg: str, theme: str, live: bool, permanent: str) -> str:
    """The whole page; `permanent` is this page's URL as known at its position."""
    words, position = chart.words, chart.footer.position
    body = "\n".join(
        (
            '<main id="content">',
            f"<h1>{text(words.title)}</h1>",
            _figures(chart),
            _figure(chart, svg),
            _known(chart, live, permanent),
            _footnotes(chart),
            _sources(chart),
            _table(chart),
            "</main>",
        )
    )
    attributes = f' data-live="{str(live).lower()}" data-position="{position}"'
    return page(words.title, body, SCRIPT, theme, attributes)


def _figures(chart: Drawn) -> str:
    drawn = chart.steps
    if not drawn.steps and not drawn.carried:
        return f"<p>No expulsions {text(chart.words.subject)} are recorded.</p>"
    sentences = (
        framing.sentence(claim, totals, drawn.steps)
        for claim, totals in zip(chart.words.claims, drawn.totals, strict=True)
    )
    return "\n".join(f'<p class="figure">{text(each)}</p>' for each in sentences)


def _figure(chart: Drawn, svg: str) -> str:
    # The SVG is an image to assistive technology: the data table below reads it out.
    label = text(f"Chart: {chart.words.title}. The data table below lists each incident.")
    image = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
    legend = (
        "Lines: the counts as reported. Bands: the range the sources allow; a band that "
        "fades out at the top has no upper bound."
    )
    return f"<figure>{image}<figcaption>{legend}</figcaption></figure>"


def _known(chart: Drawn, live: bool, permanent: str) -> str:
    footer = chart.footer
    when = f", recorded {footer.recorded_at}" if footer.recorded_at else ""
    at = f"As known at log position {footer.position}{when}"
    if live:
        return (
            f'<p class="known" id="known">{text(at)}. Live: this page follows the log and '
            f'redraws when a report changes it. <a href="{text(permanent)}">A permanent '
            "link to this state</a>, which never changes.</p>"
        )
    return f'<p class="known" id="known">{text(at)}. This page never changes.</p>'


def _notes(found: ExpulsionAt, step: Step) -> list[str]:
    said = f"{step.date}: {step.expelling} expelled diplomats of {step.expelled}"
    notes = []
    if step.uncounted:
        notes.append(f"{said}; the report gives no number, so no figure counts it.")
    elif step.most is None:
        notes.append(f"{said}; the sources give {step.reported}: no upper bound.")
    elif step.disputed:
        notes.append(f"{said}; the count is disputed: {step.reported}.")
    if step.joint:
        notes.append(f"{said}; {step.reported} between them, so attributed to none of them alone.")
    notes += [
        f"{said}; corrected (recorded {fix.recorded_on.isoformat()})"
        + (f": {fix.note}" if fix.note else ".")
        for fix in found.corrections
    ]
    return notes


def _pairs(chart: Drawn) -> list[tuple[ExpulsionAt, Step]]:
    by_id = {str(found.id): found for found in chart.incidents}
    return [(by_id[step.incident], step) for step in chart.steps.steps]


def _footnotes(chart: Drawn) -> str:
    notes = [note for found, step in _pairs(chart) for note in _notes(found, step)]
    if not notes:
        return ""
    items = "".join(f"<li>{text(note)}</li>" for note in notes)
    return f'<h2 id="notes">Notes</h2><ol aria-labelledby="notes">{items}</ol>'


def _source_items(found: ExpulsionAt, step: Step) -> str:
    cited = []
    for given in found.sources:
        href = safe_url(given.url)
        said = text(source(given))
        cited.append(
            f'<a href="{href}" rel="noopener noreferrer nofollow">{said}</a>' if href else said
        )
    where = text(f"{step.date}, {step.expelling} ({step.reported}): ")
    return f"<li>{where}{'; '.join(cited) or 'no source recorded'}</li>"


def _sources(chart: Drawn) -> str:
    items = "".join(_source_items(found, step) for found, step in _pairs(chart))
    if not items:
        return ""
    return f'<h2 id="sources">Sources</h2><ul aria-labelledby="sources">{items}</ul>'


def _table(chart: Drawn) -> str:
    heads = ("Date", "Expelling", "Expelled", "Count as reported", "Counts for", "Total so far")
    header = "".join(f'<th scope="col">{head}</th>' for head in heads)
    rows = "".join(
        "<tr>"
        + f"<td>{text(step.date)}</td><td>{text(step.expelling)}</td>"
        + f"<td>{text(step.expelled)}</td><td>{text(step.reported)}</td>"
        + f"<td>{text(step.side)}</td>"
        + f'<td class="n">{text(_total(step))}</td></tr>'
        for step in chart.steps.steps
    )
    return (
        '<table class="visually-hidden"><caption>The incidents behind the chart, oldest '
        f"first</caption><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _total(step: Step) -> str:
    allowed = framing.span(step.total_low, step.total_high)
    return str(step.total) if allowed == str(step.total) else f"{step.total} ({allowed})"


def permanent_url(path: str, query: list[tuple[str, str]], position: int) -> str:
    """This page's URL as known at `position`: the same answer forever."""
    kept = [(k, v) for k, v in query if k not in {"known_at", "min_position"}]
    return f"{path}?{urlencode([*kept, ('known_at', str(position))])}"
