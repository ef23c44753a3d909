#!/usr/bin/python3
"""Draws compare.sh's table as an SVG bar chart.

  plot.py TABLE.txt OUT.svg

TABLE.txt is what samples/bench/compare.sh prints (its rows "<workload>
ops/s ..." and the header naming the peers). Each workload gets one bar
per peer: troupe's rate over the peer's, on a logarithmic axis with 1x
(as fast as the peer) marked. Only the standard library is used.
"""
import math
import sys


def parse(path):
    peers, rows = [], []
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 2 and w[0] == "workload" and w[1] == "troupe":
                peers = []
                for p in w[2:]:
                    if p == "vs" or p.startswith("vs"):
                        break
                    peers.append(p)
                continue
            if len(w) >= 2 + len(peers) and len(w) > 2 and w[1] == "ops/s":
                vals = w[2:3 + len(peers)]
                try:
                    t = float(vals[0])
                except ValueError:
                    continue
                ratios = []
                for v in vals[1:]:
                    try:
                        ratios.append(t / float(v) if float(v) > 0 else None)
                    except ValueError:
                        ratios.append(None)
                rows.append((w[0], ratios))
    return peers, rows


def svg(peers, rows, out):
    colours = ["#3b6ea8", "#d9822b", "#6a9f4a"]
    bar, gap, left, right, top = 11, 9, 150, 40, 40
    width = 760
    scale_w = width - left - right
    lo, hi = math.log10(0.5), math.log10(200.0)
    x = lambda r: left + (math.log10(max(min(r, 200.0), 0.5)) - lo) / (hi - lo) * scale_w
    group = bar * max(len(peers), 1) + gap
    height = top + group * len(rows) + 50
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
         'font-family="sans-serif" font-size="11">' % (width, height),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="20" font-size="13">troupe\'s rate over each peer\'s '
         '(log scale; right of 1x: troupe is faster)</text>' % left]
    for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200):
        xx = x(t)
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>'
                 % (xx, top - 5, xx, height - 40,
                    "#444" if t == 1 else "#ddd"))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%gx</text>'
                 % (xx, height - 25, t))
    for i, (name, ratios) in enumerate(rows):
        y = top + i * group
        o.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                 % (left - 6, y + bar * len(peers) / 2 + 4, name))
        for j, r in enumerate(ratios):
            if r is None:
                continue
            x0, x1 = x(1.0), x(r)
            o.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                     % (min(x0, x1), y + j * bar, abs(x1 - x0), bar - 2,
                        colours[j % len(colours)]))
            o.append('<text x="%.1f" y="%d">%.1fx</text>'
                     % (max(x0, x1) + 3, y + j * bar + bar - 3, r))
    for j, p in enumerate(peers):
        o.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>'
                 '<text x="%d" y="%d">vs %s</text>'
                 % (left + 120 * j, height - 14, colours[j % len(colours)],
                    left + 120 * j + 14, height - 5, p))
    o.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(o) + "\n")


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    peers, rows = parse(argv[1])
    if not rows:
        print("plot.py: no rows in %s" % argv[1], file=sys.stderr)
        return 1
    svg(peers, rows, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
