"""Open static pages in the project's Chromium (Debian chromium via Playwright, the launch
flags of bench.browser) and report what a reader would hit: images that do not load,
a page wider than the window, links that lead nowhere, assets from elsewhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bench.browser import CHROMIUM_FLAGS, browser_available, find_chromium

__all__ = ["PageReport", "browser_available", "check_pages"]

_JS = """() => ({
  images: [...document.images].map(i => ({
    src: (i.getAttribute('src') || '').slice(0, 120), ok: i.complete && i.naturalWidth > 0 })),
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  assets: [...document.querySelectorAll('script[src], link[href], iframe[src], img[src]')]
    .map(e => e.getAttribute('src') || e.getAttribute('href')),
})"""


@dataclass
class PageReport:
    path: Path
    images: int = 0
    broken_images: list[str] = field(default_factory=list)
    overflow_px: int = 0
    broken_links: list[str] = field(default_factory=list)
    external_assets: list[str] = field(default_factory=list)
    absolute_links: list[str] = field(default_factory=list)


def _is_external(ref: str) -> bool:
    return bool(urlsplit(ref).scheme in ("http", "https") or ref.startswith("//"))


def check_pages(start: Path, *, follow: bool = True, width: int = 1280) -> list[PageReport]:
    """Every HTML page reachable from ``start`` by relative links (``follow``), each
    loaded from disk in a ``width``-pixel-wide window. Links to provider pages (http/https)
    are citations, not followed and not assets."""
    from playwright.sync_api import sync_playwright

    chromium = find_chromium()
    assert chromium is not None, "chromium not found"
    root = start.parent.resolve()
    todo, seen, out = [start.resolve()], set(), []
    ids_of: dict[Path, list[str]] = {}
    anchors: list[tuple[PageReport, str, Path, str]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            while todo:
                path = todo.pop(0)
                if path in seen:
                    continue
                seen.add(path)
                page.goto(path.as_uri(), wait_until="load")
                got = page.evaluate(_JS)
                rep = PageReport(path, images=len(got["images"]), overflow_px=int(got["overflow"]))
                rep.broken_images = [i["src"] for i in got["images"] if not i["ok"]]
                rep.external_assets = [a for a in got["assets"] if a and _is_external(a)]
                ids_of[path] = got["ids"]
                for href in got["links"]:
                    if _is_external(href) or href.startswith("mailto:"):
                        continue
                    parts = urlsplit(href)
                    if parts.scheme or href.startswith("/"):
                        rep.absolute_links.append(href)
                        continue
                    target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
                    if not target.exists():
                        rep.broken_links.append(href)
                        continue
                    if parts.fragment:
                        anchors.append((rep, href, target, parts.fragment))
                    if follow and target.suffix == ".html" and root in (target, *target.parents):
                        todo.append(target)
                out.append(rep)
            for rep, href, target, frag in anchors:  # every #anchor names an element
                if target in ids_of and frag not in ids_of[target]:
                    rep.broken_links.append(href)
        finally:
            browser.close()
    return out
