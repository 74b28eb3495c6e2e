"""The scaling plot of bench/driver.py: creation time and resident memory per
parked unit as the count grows, one line per implementation, as a
self-contained SVG (no plotting library needed).

    write_svg(path, points, title)

`points` maps an implementation to a list of (count, ns_per_unit,
kib_per_unit) tuples; counts are drawn on a log scale. A count an
implementation could not reach is simply absent from its line; `failures`
(impl -> text) is printed in the legend.
"""

import math

COLORS = {
    "gort": "#d62728",
    "go": "#1f77b4",
    "may": "#2ca02c",
    "tokio": "#9467bd",
    "threads": "#7f7f7f",
}

W, H = 900, 380
PANEL_W, PANEL_H = 340, 250
LEFT = [80, 530]
TOP = 60


def _nice_max(v):
    """A round upper bound for an axis."""
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e:
            return m * e
    return 10 * e


def _panel(out, x0, title, unit, series, counts, pick, log_y=False):
    ys = [pick(p) for pts in series.values() for p in pts]
    lo, hi = math.log10(min(counts)), math.log10(max(counts))
    span = hi - lo or 1.0

    def px(c):
        return x0 + (math.log10(c) - lo) / span * PANEL_W

    if log_y:
        ylo = math.floor(math.log10(max(min(ys, default=1.0), 1e-3)))
        yhi = max(math.ceil(math.log10(max(ys, default=1.0))), ylo + 1)
        ticks = [10.0**e for e in range(ylo, yhi + 1)]

        def py(v):
            v = max(v, 10.0**ylo)
            return TOP + PANEL_H - (math.log10(v) - ylo) / (yhi - ylo) * PANEL_H
    else:
        ymax = _nice_max(max(ys, default=1.0))
        ticks = [ymax * i / 4 for i in range(5)]

        def py(v):
            return TOP + PANEL_H - v / ymax * PANEL_H

    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{TOP - 14}" text-anchor="middle" font-weight="bold">{title}</text>')
    out.append(f'<rect x="{x0}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#444"/>')
    for v in ticks:
        y = py(v)
        out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + PANEL_W}" y2="{y}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" font-size="11">{v:g}</text>')
    for c in counts:
        x = px(c)
        out.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{TOP + PANEL_H}" stroke="#eee"/>')
        out.append(f'<text x="{x}" y="{TOP + PANEL_H + 16}" text-anchor="middle" font-size="11">{c:,}</text>')
    out.append(f'<text x="{x0 + PANEL_W / 2}" y="{TOP + PANEL_H + 34}" text-anchor="middle" font-size="12">units parked at once (log scale)</text>')
    out.append(f'<text x="{x0 - 52}" y="{TOP + PANEL_H / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 {x0 - 52} {TOP + PANEL_H / 2})">{unit}</text>')
    for impl, pts in series.items():
        if not pts:
            continue
        color = COLORS.get(impl, "#000")
        path = " ".join(f"{px(p[0]):.1f},{py(pick(p)):.1f}" for p in sorted(pts))
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for p in pts:
            out.append(f'<circle cx="{px(p[0]):.1f}" cy="{py(pick(p)):.1f}" r="3" fill="{color}"/>')


def write_svg(path, points, title, failures=None):
    failures = failures or {}
    counts = sorted({p[0] for pts in points.values() for p in pts})
    if not counts:
        return False
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 20 * len(points)}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
    ]
    _panel(out, LEFT[0], "creation time per unit", "µs per unit (log scale)", points, counts,
           lambda p: p[1] / 1000, log_y=True)
    _panel(out, LEFT[1], "resident memory per unit", "KiB per unit", points, counts, lambda p: p[2])
    y = TOP + PANEL_H + 60
    for impl in points:
        color = COLORS.get(impl, "#000")
        note = f" — {failures[impl]}" if impl in failures else ""
        out.append(f'<line x1="{LEFT[0]}" y1="{y - 4}" x2="{LEFT[0] + 24}" y2="{y - 4}" stroke="{color}" stroke-width="3"/>')
        out.append(f'<text x="{LEFT[0] + 32}" y="{y}">{impl}{_escape(note)}</text>')
        y += 20
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def _escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
