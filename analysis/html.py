"""Markdown → a static HTML page: what report.html, compare.html, the methods page and a
published folder's index are made of.

A page is the report's own Markdown (report.md and friends) rendered with mistune and one
inline stylesheet: no script, no font, no stylesheet or image from anywhere else, so a
page works from any static host or straight from the disk. Besides plain rendering:

* headings get GitHub's anchors (lowercase, punctuation dropped, spaces → ``-``, ``-1``…
  for repeats), so ``[Cost](#cost)`` works on GitHub and in the page alike; every ``##``
  part is a ``<section class="part-<anchor>">``;
* an image followed by an italic paragraph becomes a ``<figure>`` with that caption;
* tables scroll inside their own box instead of widening the page;
* a relative link to ``X.md`` becomes ``X.html`` when that page exists next to the output
  (a published folder renders the Markdown it links to);
* ``embed_images=True`` inlines relative PNGs as data URLs (a single-file report).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import mistune

__all__ = ["CSS", "markdown_to_html", "page", "write_page"]

CSS = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg-alt: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
nav.site { max-width: 1100px; margin: 0 auto; padding: .75rem 1.25rem 0; font-size: .9rem; }
nav.site a { margin-right: 1rem; }
h1 { font-size: 1.7rem; margin: .5rem 0 1rem; overflow-wrap: anywhere; }
h2 { font-size: 1.35rem; margin: 2.2rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
a { color: #0969da; overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }
code { font-size: .9em; background: var(--bg-alt); padding: .1em .3em; border-radius: 4px;
  overflow-wrap: anywhere; }
.table-wrap { max-width: 100%; overflow-x: auto; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: .86rem; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left;
  vertical-align: top; }
th { background: var(--bg-alt); }
tbody tr:nth-child(even) { background: #fbfcfd; }
img { max-width: 100%; height: auto; }
figure { margin: 1rem 0 1.6rem; }
figcaption { color: var(--muted); font-size: .9rem; max-width: 75ch; margin-top: .3rem; }
section.part-summary ol { display: grid; gap: .5rem 1.5rem; padding-left: 1.2rem;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); }
section.part-summary ol li img { display: block; margin: .3rem 0 1rem; }
section.part-summary ul li { margin: .35rem 0; }
"""


def slugify(text: str, seen: dict[str, int]) -> str:
    """GitHub's heading anchor of ``text`` (inline HTML removed), unique within ``seen``."""
    plain = html.unescape(re.sub(r"<[^>]+>", "", text)).lower()
    base = "".join(c for c in plain if c.isalnum() or c in " -_").strip().replace(" ", "-")
    n = seen.get(base, 0)
    seen[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


class _Renderer(mistune.HTMLRenderer):
    def __init__(self) -> None:
        super().__init__(escape=True)
        self.seen: dict[str, int] = {}

    def heading(self, text: str, level: int, **attrs: Any) -> str:
        anchor = slugify(text, self.seen)
        return f'<h{level} id="{anchor}">{text}</h{level}>\n'

    def table(self, text: str) -> str:
        return f'<div class="table-wrap"><table>\n{text}</table></div>\n'


def markdown_to_html(md: str) -> str:
    """The body HTML of ``md`` (see the module docstring)."""
    render = mistune.create_markdown(
        renderer=_Renderer(), plugins=["table", "url", "strikethrough"]
    )
    body = str(render(md))
    body = re.sub(
        r"<p>(<img [^>]*>)</p>\s*<p><em>(.*?)</em></p>",
        r"<figure>\1<figcaption>\2</figcaption></figure>",
        body,
        flags=re.DOTALL,
    )
    return _sections(body)


def _sections(body: str) -> str:
    """Wrap each ``<h2>`` and what follows (up to the next one) in a ``<section>``."""
    parts = re.split(r'(?=<h2 id=")', body)
    out = [parts[0]]
    for part in parts[1:]:
        anchor = re.match(r'<h2 id="([^"]*)"', part)
        name = anchor.group(1) if anchor else ""
        out.append(f'<section class="part-{name}">\n{part}</section>\n')
    return "".join(out)


def _rewrite(body: str, where: Path | None, embed_images: bool) -> str:
    """``X.md`` links → ``X.html`` where that page exists; relative PNGs inlined."""

    def link(m: re.Match[str]) -> str:
        href = m.group(1)
        target, _, frag = href.partition("#")
        if re.match(r"^[a-z]+:", target) or not target.endswith(".md") or where is None:
            return m.group(0)
        page = target[:-3] + ".html"
        if (where / page).is_file():
            return f'href="{page}{"#" + frag if frag else ""}"'
        return m.group(0)

    body = re.sub(r'href="([^"]+)"', link, body)
    if embed_images and where is not None:

        def image(m: re.Match[str]) -> str:
            src = m.group(1)
            path = where / src
            if re.match(r"^[a-z]+:", src) or not path.is_file():
                return m.group(0)
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return f'src="data:image/png;base64,{data}"'

        body = re.sub(r'src="([^"]+\.png)"', image, body)
    return body


def page(
    md: str,
    title: str,
    *,
    where: Path | None = None,
    nav: list[tuple[str, str]] | None = None,
    embed_images: bool = False,
) -> str:
    """A whole HTML page of ``md``; ``where`` is the folder the page is written to (for
    link rewriting and image inlining), ``nav`` (label, relative href) links above it."""
    body = _rewrite(markdown_to_html(md), where, embed_images)
    links = "".join(f'<a href="{html.escape(h)}">{html.escape(t)}</a>' for t, h in nav or [])
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + (f'<nav class="site">{links}</nav>\n' if links else "")
        + f"<main>\n{body}</main>\n</body>\n</html>\n"
    )


def write_page(
    path: Path,
    md: str,
    title: str,
    *,
    nav: list[tuple[str, str]] | None = None,
    embed_images: bool = False,
) -> Path:
    """Render ``md`` into ``path`` (links and images resolved from its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = page(md, title, where=path.parent, nav=nav, embed_images=embed_images)
    path.write_text(text, encoding="utf-8")
    return path
