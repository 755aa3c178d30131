import json, numpy as np, sys, csv, os
from st import load
from proto_words import S, W
t, meta = load("../features.safetensors"); ids = json.loads(meta["ids"]); idx = {x: i for i, x in enumerate(ids)}
splits = json.load(open("../flickr8k/splits.json"))
caps = {}
for line in open("../flickr8k/descriptions.txt"):
    k, c = line.split(" ", 1); caps.setdefault(k, []).append(set(c.split()))
tr = splits["train"]
X1 = t["features"][[idx[k] for k in tr]]; Y1 = np.array([[sum(bool(c & W[s]) for c in caps[k]) / len(caps[k]) for s in S] for k in tr], np.float32)
it, im = load("inet.safetensors"); iids = json.loads(im["ids"]); iidx = {x: i for i, x in enumerate(iids)}
labels = {r["file"]: r for r in csv.DictReader(open("../../../shared/data/imagenet-sample/labels.tsv"), delimiter="\t")}
files = sorted(labels); fit = files[:250]
X2 = it["features"][[iidx[os.path.splitext(f)[0]] for f in fit]]
Y2 = np.array([[s in {x.strip() for x in labels[f]["setting"].split(",")} for s in S] for f in fit], np.float32)
wt2 = float(sys.argv[1])
X = np.vstack([X1, X2]); Y = np.vstack([Y1, Y2]); wts = np.concatenate([np.ones(len(X1)), np.full(len(X2), wt2)]).astype(np.float32)
mu = X.mean(0); sd = X.std(0) + 1e-3; Xs = (X - mu) / sd
K = len(S); w = np.zeros((X.shape[1], K), np.float32); b = np.zeros(K, np.float32)
m = np.zeros((X.shape[1] + 1, K), np.float32); v = np.zeros_like(m); L2 = float(sys.argv[2])
for step in range(1, 301):
    p = 1 / (1 + np.exp(-(Xs @ w + b)))
    e = (p - Y) * wts[:, None] / wts.sum()
    G = np.vstack([Xs.T @ e + L2 * w, e.sum(0)])
    m = 0.9 * m + 0.1 * G; v = 0.999 * v + 0.001 * G * G
    corr = np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step); u = 0.05 * corr * m / (np.sqrt(v) + 1e-8)
    w -= u[:-1]; b -= u[-1]
wf = w / sd[:, None]; bf = b - mu @ wf
np.savez(sys.argv[3], w=wf, b=bf)
