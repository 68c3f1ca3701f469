"""The page itself: counts, filters, the timeline and one card per job."""

from __future__ import annotations

from collections.abc import Sequence

from ._assets import SCRIPT, STYLE, policy
from ._format import (
    css_class,
    duration,
    escape,
    moment_text,
    size_text,
    status_label,
    units_text,
)
from ._rows import File, Job, Loaded
from ._timeline import running_steps, timeline_html

__all__ = ["render_page"]

STATUS_ORDER = ("succeed", "failed", "error", "not_started", "unknown")
# Cards whose players load their metadata up front; later ones wait to be played or
# scrolled to, so a page of thousands of jobs does not open thousands of files at once.
_EAGER_CARDS = 120


def _statuses(jobs: Sequence[Job]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    known = [(s, counts[s]) for s in STATUS_ORDER if s in counts]
    others = sorted((s, n) for s, n in counts.items() if s not in STATUS_ORDER)
    return known + others


def _player(file: File, *, eager: bool) -> str:
    href, name = escape(file.href), escape(file.name)
    preload = "metadata" if eager else "none"
    if file.kind == "video":
        element = f'<video controls preload="{preload}" src="{href}"></video>'
    elif file.kind == "image":
        lazy = "" if eager else ' loading="lazy"'
        element = f'<img src="{href}" alt="{name}"{lazy}>'
    elif file.kind == "audio":
        element = f'<audio controls preload="{preload}" src="{href}"></audio>'
    else:
        element = ""
    size = f" · {escape(size_text(file.size))}" if file.size is not None else ""
    link = f'<a class="file" href="{href}">{name}</a>{size}'
    figure = f'<figure class="player kind-{file.kind}">'
    return f"{figure}{element}<figcaption>{link}</figcaption></figure>"


def _card(job: Job, *, eager: bool = True) -> str:
    rows: list[tuple[str, str]] = []
    if job.endpoint:
        rows.append(("endpoint", job.endpoint))
    if job.units is not None:
        rows.append(("units", units_text(job.units)))
    if job.created:
        rows.append(("created", moment_text(job.created)))
    if job.finished:
        rows.append(("finished", moment_text(job.finished)))
    if job.created and job.finished:
        rows.append(("took", duration((job.finished - job.created).total_seconds())))
    if job.task_id:
        rows.append(("task id", job.task_id))
    if job.external_task_id:
        rows.append(("external id", job.external_task_id))
    details = "".join(f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in rows)
    reason = ""
    if job.error_code or job.error_message:
        code = f'<span class="code">{escape(job.error_code)}</span> ' if job.error_code else ""
        reason = f'<p class="reason">{code}{escape(job.error_message)}</p>'
    players = "".join(_player(f, eager=eager) for f in job.files)
    media = (
        f'<div class="media">{players}</div>'
        if players
        else '<div class="media none">no files</div>'
    )
    prompt = f'<p class="prompt">{escape(job.prompt)}</p>' if job.prompt else ""
    status_class = css_class(job.status)
    return (
        f'<article class="card {status_class}" data-status="{escape(job.status)}">'
        f"{media}"
        f'<div class="body"><header><h3 class="key">{escape(job.key) or "(no key)"}</h3>'
        f'<span class="badge {status_class}">{escape(status_label(job.status))}</span></header>'
        f"{prompt}{reason}<dl>{details}</dl></div></article>"
    )


def render_page(loaded: Loaded, *, title: str) -> str:
    """The whole HTML page for the jobs read."""
    jobs = loaded.jobs
    statuses = _statuses(jobs)
    units = sum(j.units for j in jobs if j.units is not None)
    file_count = sum(len(j.files) for j in jobs)
    _, length = running_steps(jobs)
    tiles = [f'<div class="count"><b>{len(jobs)}</b>jobs</div>']
    tiles += [
        f'<div class="count {css_class(s)}" data-status="{escape(s)}"><b>{n}</b>'
        f"{escape(status_label(s))}</div>"
        for s, n in statuses
    ]
    tiles.append(f'<div class="count"><b>{file_count}</b>files</div>')
    tiles.append(f'<div class="count"><b>{escape(units_text(units))}</b>units</div>')
    if length > 0:
        tiles.append(f'<div class="count"><b>{escape(duration(length))}</b>wall time</div>')
    buttons = [
        f'<button type="button" data-filter="all" aria-pressed="true">all ({len(jobs)})</button>'
    ]
    buttons += [
        f'<button type="button" data-filter="{escape(s)}" aria-pressed="false">'
        f"{escape(status_label(s))} ({n})</button>"
        for s, n in statuses
    ]
    notes: list[str] = []
    if loaded.sources:
        notes.append("read from " + ", ".join(escape(s) for s in loaded.sources))
    if loaded.duplicates:
        notes.append(f"{loaded.duplicates} repeated key(s) merged, the latest attempt kept")
    if loaded.unreadable:
        notes.append(f"{loaded.unreadable} line(s) could not be read and are left out")
    subtitle = " · ".join(notes)
    cards = "\n".join(_card(j, eager=i < _EAGER_CARDS) for i, j in enumerate(jobs))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{escape(policy())}">
<meta name="referrer" content="no-referrer">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p class="muted">{subtitle}</p>
<section class="counts" id="counts">{"".join(tiles)}</section>
<h2>Slot use</h2>
<section id="timeline">{timeline_html(jobs)}</section>
<h2>Jobs <span class="muted">(<span id="shown">{len(jobs)}</span> shown)</span></h2>
<nav id="filters">{"".join(buttons)}
<input type="search" id="search" placeholder="filter by key or prompt"
 aria-label="filter by key or prompt">
</nav>
<main id="gallery">
{cards}
</main>
<p id="empty" class="muted" hidden>No job matches the filter.</p>
<script>{SCRIPT}</script>
</body>
</html>
"""
