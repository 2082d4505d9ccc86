"""A map (or a plain picture) as one light element: a Streamlit v2 component, not a plotly figure.

A plotly figure per map cost the browser 30-60 ms to build on every page switch, and a
Compare page draws ten. Here the browser gets one WebP picture (the map already blended over
the cell), a coarse grid of the map's values for hover, and the colour bar as a gradient
with its tick labels; it builds them with plain DOM calls. What the figure offered stays:

- hover: ``pixel x, y`` and the block-averaged value in the map's units;
- zoom: a double click zooms in 3x around the pointer (a second one shows the whole picture),
  Ctrl + wheel (or a trackpad pinch) zooms, a drag pans; a plain wheel scrolls the page as
  everywhere else; the zoom of a map stays while the page reruns (same key);
- the colour bar: vertical beside the map with its title below, or short and horizontal
  below it (``compact``).

Every text (title, labels, hover) is set with ``textContent``, never as HTML.
"""
from __future__ import annotations

import streamlit as st

_CSS = """
.dn-map { font-family: var(--st-font, sans-serif); color: var(--st-text-color, inherit); }
.dn-map-title { font-size: 13px; margin: 0 0 4px 0; min-height: 0; overflow-wrap: anywhere; }
.dn-map-row { display: flex; align-items: stretch; justify-content: center; gap: 6px; }
.dn-map-row.dn-compact { flex-direction: column; align-items: center; }
.dn-map-frame { position: relative; overflow: hidden; width: 100%; touch-action: none; cursor: crosshair;
        flex: 0 1 auto; }
.dn-map-frame img { position: absolute; left: 0; top: 0; width: 100%; height: 100%; transform-origin: 0 0;
        user-select: none; -webkit-user-drag: none; display: block; }
.dn-map-tip { position: absolute; pointer-events: none; background: rgba(30, 30, 36, 0.85); color: #fff;
        font-size: 11px; padding: 2px 5px; border-radius: 3px; white-space: nowrap; display: none; z-index: 2; }
.dn-map-bar { position: relative; flex: none; font-size: 10px; }
.dn-map-bar .dn-strip { position: absolute; }
.dn-map-bar .dn-tick { position: absolute; white-space: nowrap; line-height: 1; }
.dn-map-bartitle { font-size: 11px; text-align: center; margin-top: 2px; opacity: 0.85; }
.dn-vertical { width: 10px; }
.dn-vertical .dn-strip { left: 0; top: 0; width: 10px; height: 100%; }
.dn-vertical .dn-tick { left: 14px; transform: translateY(-50%); }
.dn-horizontal { height: 26px; width: 72%; }
.dn-horizontal .dn-strip { left: 0; top: 2px; height: 8px; width: 100%; }
.dn-horizontal .dn-tick { top: 13px; transform: translateX(-50%); }
"""

_JS = """
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a';
  const a = Math.abs(v);
  return (a !== 0 && (a < 1e-3 || a >= 1e4)) ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}

function build(root) {
  const title = document.createElement('div'); title.className = 'dn-map-title';
  const row = document.createElement('div'); row.className = 'dn-map-row';
  const frame = document.createElement('div'); frame.className = 'dn-map-frame';
  frame.dataset.testid = 'mapFrame';
  const img = document.createElement('img'); img.decoding = 'async'; img.draggable = false;
  const tip = document.createElement('div'); tip.className = 'dn-map-tip';
  frame.append(img, tip);
  const bar = document.createElement('div'); bar.className = 'dn-map-bar';
  row.append(frame, bar);
  const barTitle = document.createElement('div'); barTitle.className = 'dn-map-bartitle';
  root.append(title, row, barTitle);
  const z = root.__zoom = { s: 1, tx: 0, ty: 0 };
  const apply = () => { img.style.transform = `translate(${z.tx}px, ${z.ty}px) scale(${z.s})`;
                        root.dataset.zoom = z.s.toFixed(3); };
  const clamp = () => {
    const w = frame.clientWidth, h = frame.clientHeight;
    z.s = Math.min(Math.max(z.s, 1), 32);
    z.tx = Math.min(0, Math.max(w - w * z.s, z.tx));
    z.ty = Math.min(0, Math.max(h - h * z.s, z.ty));
  };
  root.__apply = () => { clamp(); apply(); };
  const zoomAt = (px, py, s) => {
    s = Math.min(Math.max(s, 1), 32);
    const f = s / z.s;
    z.tx = px - (px - z.tx) * f; z.ty = py - (py - z.ty) * f; z.s = s;
    clamp(); apply();
  };
  frame.title = 'Double-click to zoom in (again: whole picture); Ctrl + wheel or pinch zooms; drag pans';
  frame.addEventListener('wheel', (e) => {
    if (!(e.ctrlKey || e.metaKey)) return;      // a plain wheel scrolls the page, as everywhere else
    e.preventDefault();
    const r = frame.getBoundingClientRect();
    zoomAt(e.clientX - r.left, e.clientY - r.top, z.s * Math.exp(-e.deltaY * 0.002));
  }, { passive: false });
  let drag = null;
  frame.addEventListener('pointerdown', (e) => {
    if (z.s <= 1) return;
    drag = { x: e.clientX, y: e.clientY, tx: z.tx, ty: z.ty };
    frame.setPointerCapture(e.pointerId);
  });
  frame.addEventListener('pointerup', () => { drag = null; });
  frame.addEventListener('dblclick', (e) => {
    if (z.s > 1) { z.s = 1; z.tx = 0; z.ty = 0; apply(); return; }
    const r = frame.getBoundingClientRect();
    zoomAt(e.clientX - r.left, e.clientY - r.top, 3);
  });
  frame.addEventListener('pointerleave', () => { tip.style.display = 'none'; });
  frame.addEventListener('pointermove', (e) => {
    const r = frame.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
    if (drag) { z.tx = drag.tx + e.clientX - drag.x; z.ty = drag.ty + e.clientY - drag.y; clamp(); apply(); }
    const d = root.__data;
    const x = (px - z.tx) / z.s / r.width * d.width, y = (py - z.ty) / z.s / r.height * d.height;
    if (x < 0 || y < 0 || x >= d.width || y >= d.height) { tip.style.display = 'none'; return; }
    let text = `pixel x ${Math.floor(x)}, y ${Math.floor(y)}`;
    if (d.grid) {
      const rows = d.grid.length, cols = d.grid[0].length;
      const gy = Math.min(rows - 1, Math.floor(y / d.height * rows)), gx = Math.min(cols - 1, Math.floor(x / d.width * cols));
      text += ` · ${d.hover}: ${fmt(d.grid[gy][gx])}`;
    }
    tip.textContent = text;
    tip.style.display = 'block';
    tip.style.left = Math.min(px + 12, Math.max(0, r.width - tip.offsetWidth - 2)) + 'px';
    tip.style.top = Math.max(0, py - 22) + 'px';
  });
}

function drawBar(bar, spec, row) {
  bar.replaceChildren();
  if (!spec) { bar.style.display = 'none'; row.classList.remove('dn-compact'); return; }
  bar.style.display = '';
  const vertical = !spec.compact;
  row.classList.toggle('dn-compact', !vertical);
  bar.className = 'dn-map-bar ' + (vertical ? 'dn-vertical' : 'dn-horizontal');
  const strip = document.createElement('div'); strip.className = 'dn-strip';
  const stops = spec.stops.map(([p, c]) => `${c} ${(100 * p).toFixed(1)}%`).join(', ');
  strip.style.background = `linear-gradient(${vertical ? 'to top' : 'to right'}, ${stops})`;
  bar.append(strip);
  let widest = 0;
  for (const [p, text] of spec.ticks) {
    const t = document.createElement('div'); t.className = 'dn-tick'; t.textContent = text;
    if (vertical) t.style.top = (100 * (1 - p)).toFixed(1) + '%'; else t.style.left = (100 * p).toFixed(1) + '%';
    bar.append(t);
    widest = Math.max(widest, text.length);
  }
  if (vertical) bar.style.width = (14 + 6 * widest) + 'px';
}

export default function(component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector('.dn-map');
  if (!root) { root = document.createElement('div'); root.className = 'dn-map'; parentElement.appendChild(root); build(root); }
  root.dataset.testid = 'mapImage';
  root.__data = data;
  const title = root.querySelector('.dn-map-title'), row = root.querySelector('.dn-map-row');
  const frame = root.querySelector('.dn-map-frame'), img = frame.querySelector('img');
  title.textContent = data.title || '';
  title.style.display = data.title ? '' : 'none';
  img.alt = data.title || 'map';
  if (img.getAttribute('src') !== data.src) img.setAttribute('src', data.src);
  frame.style.aspectRatio = `${data.width} / ${data.height}`;
  frame.style.maxWidth = Math.round(data.box * data.width / data.height) + 'px';
  drawBar(root.querySelector('.dn-map-bar'), data.bar, row);
  const barTitle = root.querySelector('.dn-map-bartitle');
  barTitle.textContent = (data.bar && data.bar.title) ? 'colour: ' + data.bar.title : '';
  barTitle.style.display = barTitle.textContent ? '' : 'none';
  root.__apply();
}
"""


def _renderer():
    # Registering the same definition again is a no-op (a different one would be logged).
    return st.components.v2.component("displasia.map_image", css=_CSS, js=_JS, isolate_styles=False)


def show(picture: dict, *, key: str) -> None:
    """Draw a picture made by :func:`ui.display.map_picture` or :func:`ui.display.image_picture`
    in the current container."""
    _renderer()(key=key, data=picture)
