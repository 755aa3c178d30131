import json, numpy as np, sys, csv, os
from st import load
S = ["water","snow","grass","sand","street","indoors","trees","rocks","sky"]
mil = np.load(sys.argv[1]); w, b = mil["w"], mil["b"]
t, meta = load("inet.safetensors"); ids = json.loads(meta["ids"])
labels = {r["file"]: r for r in csv.DictReader(open("../../../shared/data/imagenet-sample/labels.tsv"), delimiter="\t")}
files = sorted(labels)  # file-name order
half = sys.argv[2] if len(sys.argv) > 2 else "fit"
sel = files[:250] if half == "fit" else files[250:]
idx = {x: i for i, x in enumerate(ids)}
def key(f): return os.path.splitext(f)[0]
rows = [idx[key(f)] for f in sel]
g = t["grid"][rows].astype(np.float32)
z = g @ w + b; p = 1 / (1 + np.exp(-z)); P = 1 - np.prod(1 - p, axis=1)
have = np.array([[s in {x.strip() for x in labels[f]["setting"].split(",")} for s in S] for f in sel])
for j, s in enumerate(S):
    out = f"{s:8} present {have[:, j].sum():3}"
    for th in [0.3, 0.5, 0.7, 0.8, 0.9, 0.95]:
        m = P[:, j] >= th
        out += f" | >={th}: {m.sum():3} true {(m & have[:, j]).sum():3}"
    print(out)
