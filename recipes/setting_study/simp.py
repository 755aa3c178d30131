import json, numpy as np, sys, csv, os
from st import load
from proto_words import S
t, meta = load("inet.safetensors"); ids = json.loads(meta["ids"]); idx = {x: i for i, x in enumerate(ids)}
labels = {r["file"]: r for r in csv.DictReader(open("../../../shared/data/imagenet-sample/labels.tsv"), delimiter="\t")}
files = sorted(labels); half = sys.argv[1]
sel = files[:250] if half == "fit" else files[250:]
rows = [idx[os.path.splitext(f)[0]] for f in sel]
have = np.array([[s in {x.strip() for x in labels[f]["setting"].split(",")} for s in S] for f in sel]); hasany = have.any(1)
js = {os.path.basename(json.loads(l)["image"]): json.loads(l) for l in open(f"../fit/base-{half}.jsonl")}
cls = np.array([[js[f]["evidence"][s]["classifier"] for s in S] for f in sel])
d = np.load(sys.argv[2]); Q = 1 / (1 + np.exp(-(t["features"][rows] @ d["w"] + d["b"])))
def run(det, th):
    strength = np.where(cls >= 0.3, 1 + cls, np.where(det >= th, det, -1))
    best = strength.argmax(1); said = strength.max(1) > 0
    rec = sum(1 for i in range(len(sel)) if said[i] and hasany[i] and have[i, best[i]])
    false = sum(1 for i in range(len(sel)) if said[i] and not have[i, best[i]])
    return rec, false, int(said.sum())
print("photos with a setting", hasany.sum())
for th in [1.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]:
    print(f"th {th}: rec/false/said {run(Q, th)}")
