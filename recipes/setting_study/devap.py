import json, numpy as np, sys
from st import load
from proto_words import S, W
t, meta = load("../features.safetensors"); ids = json.loads(meta["ids"]); idx = {x: i for i, x in enumerate(ids)}
splits = json.load(open("../flickr8k/splits.json"))
caps = {}
for line in open("../flickr8k/descriptions.txt"):
    k, c = line.split(" ", 1); caps.setdefault(k, []).append(set(c.split()))
dv = splits["dev"]; rows = [idx[k] for k in dv]
Y = np.array([[sum(bool(c & W[s]) for c in caps[k]) >= 2 for s in S] for k in dv])
mil = np.load(sys.argv[1]); g = t["grid"][rows].astype(np.float32)
p = 1 / (1 + np.exp(-(g @ mil["w"] + mil["b"]))); P = 1 - np.prod(1 - p, axis=1)
c, _ = load("../../models/default/concepts.safetensors")
allnames = "person,dog,clothing,prop,water,snow,grass,sand,street,indoors,trees,rocks,sky".split(",")
cw = c["weights"][[allnames.index(s) for s in S]]; cb = c["bias"][[allnames.index(s) for s in S]]
Q = 1 / (1 + np.exp(-(t["features"][rows] @ cw.T + cb)))
def ap(score, y):
    o = np.argsort(-score); y = y[o]; hits = np.cumsum(y); prec = hits / np.arange(1, len(y) + 1)
    return (prec * y).sum() / max(y.sum(), 1)
for j, s in enumerate(S):
    print(f"{s:8} positives {Y[:, j].sum():4}  AP pooled {ap(Q[:, j], Y[:, j]):.3f}  MIL {ap(P[:, j], Y[:, j]):.3f}")
