"""One page of cell thumbnails as a single clickable element (a Streamlit v2 component).

Drawn as Streamlit widgets, a page of 48 tiles was about 300 elements (columns, bordered
containers, image, name, caption, button), and the browser needed most of a second to lay
them out on every page turn. Here the page is one element: the browser receives the tiles as
data and builds them with plain DOM calls. Every text is set with ``textContent``, never as
HTML, so a file name such as ``<img src=x onerror=...>.jpg`` stays text. A click (or Enter on
a focused tile) sends the tile's name back as a one-rerun trigger value.
"""
from __future__ import annotations

import base64
from dataclasses import asdict, dataclass

import streamlit as st

_CSS = """
.dn-grid { display: grid; grid-template-columns: repeat(var(--columns), minmax(0, 1fr)); gap: 0.75rem; }
.dn-tile { border: 1px solid var(--st-border-color, rgba(128,128,128,.3)); border-radius: 0.5rem;
        padding: 0.5rem; cursor: pointer; background: var(--st-background-color, transparent);
        color: var(--st-text-color, inherit); font-family: var(--st-font, sans-serif); font-size: 0.85rem;
        text-align: left; min-width: 0; }
.dn-tile:hover, .dn-tile:focus-visible { border-color: var(--st-primary-color, #ff4b4b); outline: none; }
.dn-tile.dn-current { border: 2px solid var(--st-primary-color, #ff4b4b); cursor: default; }
.dn-tile img { width: 100%; aspect-ratio: 1 / 1; object-fit: contain; display: block; border-radius: 0.25rem; }
.dn-name { font-family: var(--st-code-font, monospace); font-size: 0.75rem; overflow-wrap: anywhere; margin-top: 0.35rem; }
.dn-line { margin-top: 0.15rem; }
.dn-score { font-weight: 700; }
.dn-state { font-size: 0.75rem; margin-top: 0.25rem; color: var(--st-primary-color, #ff4b4b); }
"""

_JS = """
export default function(component) {
  const { data, parentElement, setTriggerValue } = component;
  let grid = parentElement.querySelector('.dn-grid');
  if (!grid) { grid = document.createElement('div'); grid.className = 'dn-grid'; parentElement.appendChild(grid); }
  grid.style.setProperty('--columns', String(data.columns));
  const tiles = [];
  for (const cell of data.tiles) {
    const tile = document.createElement('div');
    tile.className = cell.current ? 'dn-tile dn-current' : 'dn-tile';
    tile.setAttribute('role', 'button');
    tile.setAttribute('tabindex', '0');
    tile.setAttribute('aria-label', (cell.current ? 'Current cell ' : 'Select cell ') + cell.name);
    tile.dataset.testid = 'cellTile';
    const img = document.createElement('img');
    img.alt = cell.name; img.src = cell.src; img.decoding = 'async';
    const name = document.createElement('div'); name.className = 'dn-name'; name.textContent = cell.name;
    const score = document.createElement('div'); score.className = 'dn-line dn-score'; score.textContent = cell.score;
    const label = document.createElement('div'); label.className = 'dn-line'; label.textContent = cell.label;
    const state = document.createElement('div'); state.className = 'dn-state';
    state.textContent = cell.current ? 'current cell' : '';
    tile.append(img, name, score, label, state);
    if (!cell.current) {
      const pick = () => setTriggerValue('picked', cell.name);
      tile.addEventListener('click', pick);
      tile.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pick(); } });
    }
    tiles.push(tile);
  }
  grid.replaceChildren(...tiles);
}
"""


@dataclass(frozen=True)
class Tile:
    name: str
    src: str              # a data: URL of the thumbnail (WebP)
    score: str            # "0.987 → normal" or "scoring…"
    label: str            # "label: normal ✓"
    current: bool = False


#: The picture of a tile whose image cannot be decoded: a plain grey square.
UNREADABLE = ("data:image/svg+xml;base64," + base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16" fill="#bbb"/></svg>'
).decode("ascii"))


def _renderer():
    # Registering the same definition again is a no-op (a different one would be logged).
    return st.components.v2.component("displasia.cell_tiles", css=_CSS, js=_JS, isolate_styles=False)


def tile_grid(tiles: list[Tile], *, columns: int, key: str) -> str | None:
    """Draw ``tiles``; the name of the tile clicked in this rerun, else None."""
    result = _renderer()(key=key, data={"columns": columns, "tiles": [asdict(t) for t in tiles]},
                         on_picked_change=lambda: None)
    return getattr(result, "picked", None)
