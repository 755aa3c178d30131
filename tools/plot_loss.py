"""Draws the per-epoch train and dev loss of a training run (its log.jsonl) as a small SVG.
Standard library only.  python3 tools/plot_loss.py work/full/model/log.jsonl docs/loss.svg"""
import json, sys

log, out = sys.argv[1], sys.argv[2]
epochs = [json.loads(line) for line in open(log) if line.strip()]
series = {"train loss": [e["train_loss"] for e in epochs], "dev loss": [e["dev_loss"] for e in epochs]}
colours = {"train loss": "#1f77b4", "dev loss": "#d62728"}
W, H, L, R, T, B = 480, 260, 50, 20, 20, 40
lo = min(min(v) for v in series.values()); hi = max(max(v) for v in series.values())
lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
n = len(epochs)
x = lambda i: L + (W - L - R) * (i / max(n - 1, 1))
y = lambda v: T + (H - T - B) * (1 - (v - lo) / (hi - lo))
parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<line x1="{L}" y1="{H - B}" x2="{W - R}" y2="{H - B}" stroke="black"/>',
         f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H - B}" stroke="black"/>']
for k in range(5):
    v = lo + (hi - lo) * k / 4
    parts.append(f'<text x="{L - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
for i, e in enumerate(epochs):
    parts.append(f'<text x="{x(i):.1f}" y="{H - B + 15}" text-anchor="middle">{e["epoch"]}</text>')
parts.append(f'<text x="{(W + L) / 2}" y="{H - 8}" text-anchor="middle">epoch</text>')
for j, (name, values) in enumerate(series.items()):
    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
    parts.append(f'<polyline points="{points}" fill="none" stroke="{colours[name]}" stroke-width="2"/>')
    parts.append(f'<text x="{W - R - 90}" y="{T + 15 + 15 * j}" fill="{colours[name]}">{name}</text>')
best = min(range(n), key=lambda i: epochs[i]["dev_loss"])
parts.append(f'<circle cx="{x(best):.1f}" cy="{y(epochs[best]["dev_loss"]):.1f}" r="4" fill="none" stroke="black"/>')
parts.append("</svg>")
open(out, "w").write("\n".join(parts) + "\n")
