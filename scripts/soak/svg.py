"""A small SVG line chart writer (no dependencies): one panel per metric, one line per
service, the warm-up and drain marked, the bound drawn where there is one."""

from xml.sax.saxutils import escape

COLOURS = {"http": "#1f77b4", "chat": "#d62728", "ftp": "#2ca02c", "serve": "#7f7f7f"}


def panel(x0, y0, w, h, title, lines, t_max, unit, marks, bounds):
    """`lines`: name -> [(t, v)]; `marks`: [(t, label)]; `bounds`: name -> (t_from, v)."""
    vmax = max([v for pts in lines.values() for _, v in pts] +
               [v for _, v in bounds.values()] + [1e-9]) * 1.1
    out = [f'<g transform="translate({x0},{y0})">',
           f'<rect width="{w}" height="{h}" fill="#fff" stroke="#ccc"/>',
           f'<text x="4" y="-6" font-size="13" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        v = vmax * k / 4
        y = h - h * k / 4
        out.append(f'<line x1="0" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="-4" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                   f'{v:.0f}{unit if k == 4 else ""}</text>')
    for k in range(6):
        t = t_max * k / 5
        x = w * k / 5
        out.append(f'<text x="{x:.1f}" y="{h + 14}" font-size="10" text-anchor="middle">'
                   f'{t:.0f} s</text>')
    for t, label in marks:
        x = w * t / t_max
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{h}" stroke="#999" '
                   f'stroke-dasharray="3,3"/>')
        out.append(f'<text x="{x + 3:.1f}" y="12" font-size="10" fill="#666">'
                   f'{escape(label)}</text>')
    for name, (t_from, v) in bounds.items():
        x, y = w * t_from / t_max, h - h * v / vmax
        out.append(f'<line x1="{x:.1f}" x2="{w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{COLOURS.get(name, "#000")}" stroke-dasharray="6,3" opacity="0.6"/>')
    for name, pts in lines.items():
        if not pts:
            continue
        d = " ".join(f"{w * t / t_max:.1f},{h - h * v / vmax:.1f}" for t, v in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{COLOURS.get(name, "#000")}" '
                   f'stroke-width="1.5"/>')
    out.append("</g>")
    return out


def render(path, title, srs, marks, bounds):
    """`srs`: service -> [(t, phase, rss_kib, fds, threads, cpu)] (procs.series);
    `bounds`: metric -> service -> (t_from, value)."""
    t_max = max([p[0] for pts in srs.values() for p in pts] + [1])
    w, h, left, top, gap = 820, 150, 60, 50, 45
    metrics = [("RSS (MiB), summed over each service's processes", 2, 1 / 1024, " MiB", "rss"),
               ("open descriptors", 3, 1, "", "fds"),
               ("threads", 4, 1, "", "threads"),
               ("CPU (% of one core)", 5, 1, "%", None)]
    height = top + len(metrics) * (h + gap) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + left + 20}" height="{height}" '
           f'font-family="sans-serif">',
           f'<rect width="100%" height="100%" fill="#fafafa"/>',
           f'<text x="{left}" y="20" font-size="15" font-weight="bold">{escape(title)}</text>']
    x = left
    for name, colour in COLOURS.items():
        if name in srs:
            out.append(f'<rect x="{x}" y="28" width="12" height="4" fill="{colour}"/>')
            out.append(f'<text x="{x + 16}" y="34" font-size="11">{name}</text>')
            x += 70
    out.append(f'<text x="{x + 10}" y="34" font-size="11" fill="#666">dashed: bound after '
               f'warm-up</text>')
    for i, (label, col, scale, unit, key) in enumerate(metrics):
        lines = {svc: [(p[0], p[col] * scale) for p in pts] for svc, pts in srs.items()}
        b = {svc: (t, v * scale) for svc, (t, v) in bounds.get(key, {}).items()}
        out += panel(left, top + 20 + i * (h + gap), w, h, label, lines, t_max, unit, marks, b)
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
