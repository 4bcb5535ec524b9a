"""Self-contained HTML pieces for the report: tables, figures, sections, one page (no network assets)."""
from __future__ import annotations

import math
from html import escape
from pathlib import Path

import pandas as pd

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1200px; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .85em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f2f2f2; } td.text, th.text { text-align: left; }
tr.supported td { background: #e6f4ea; } tr.not-supported td { background: #fce8e6; }
tr.inconclusive td { background: #fef7e0; } tr.underpowered td { background: #eeeeee; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
.note { color: #555; font-style: italic; }
.warning { background: #fce8e6; border: 2px solid #d93025; padding: .8em; margin: 1em 0; }
details { margin: .5em 0; }
.wide { overflow-x: auto; max-width: 100%; }
"""


def cell(value) -> tuple[str, bool]:
    """(text, is_text) for one table cell: numbers to 3 significant digits, NaN as an en dash."""
    if isinstance(value, bool) or value is None:
        return escape(str(value)), True
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return str(value), False
    if isinstance(value, float):
        return ("–" if math.isnan(value) else f"{value:.3g}"), False
    return escape(str(value)), True


def table(frame: pd.DataFrame, row_class: str | None = None) -> str:
    """A DataFrame as an HTML table; `row_class` names a column whose value styles each row."""
    if frame.empty:
        return note("nothing to show")
    head = "".join(f"<th class='text'>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        cls = f" class='{escape(str(r[row_class]).replace(' ', '-'))}'" if row_class else ""
        cells = "".join(f"<td class='text'>{t}</td>" if is_text else f"<td>{t}</td>"
                        for t, is_text in map(cell, r.tolist()))
        rows.append(f"<tr{cls}>{cells}</tr>")
    # a table wider than the page scrolls inside its own box instead of overflowing the page
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def figure(path: Path | None, caption: str, base: Path) -> str:
    """An <img> with a caption, linked relative to the report folder; a note when there is no figure."""
    if path is None:
        return note(caption)
    return (f"<figure><img src='{escape(path.relative_to(base).as_posix())}' alt='{escape(caption)}'>"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def note(text: str) -> str:
    return f"<p class='note'>{escape(text)}</p>"


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def warning(text: str) -> str:
    return f"<div class='warning'><strong>Warning:</strong> {escape(text)}</div>"


def details(summary: str, body: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{body}</details>"


def section(title: str, *parts: str) -> str:
    anchor = "".join(ch if ch.isalnum() else "-" for ch in title.lower())
    return f"<section id='{anchor}'><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def page(title: str, *parts: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{''.join(parts)}</body></html>\n")
