import json, numpy as np, sys, csv, os
from st import load
from proto_words import S
t, meta = load("inet.safetensors"); ids = json.loads(meta["ids"]); idx = {x: i for i, x in enumerate(ids)}
labels = {r["file"]: r for r in csv.DictReader(open("../../../shared/data/imagenet-sample/labels.tsv"), delimiter="\t")}
files = sorted(labels); half = sys.argv[1]
sel = files[:250] if half == "fit" else files[250:]
rows = [idx[os.path.splitext(f)[0]] for f in sel]
have = np.array([[s in {x.strip() for x in labels[f]["setting"].split(",")} for s in S] for f in sel])
hasany = have.any(1)
# classifier support from the captioner's JSON
js = {os.path.basename(json.loads(l)["image"]): json.loads(l) for l in open(f"../fit/base-{half}.jsonl")}
cls = np.array([[js[f]["evidence"][s]["classifier"] for s in S] for f in sel])
mil = np.load(sys.argv[2]); g = t["grid"][rows].astype(np.float32)
p = 1 / (1 + np.exp(-(g @ mil["w"] + mil["b"]))); P = 1 - np.prod(1 - p, axis=1)
c, _ = load("../../models/default/concepts.safetensors")
alln = "person,dog,clothing,prop,water,snow,grass,sand,street,indoors,trees,rocks,sky".split(",")
cw = c["weights"][[alln.index(s) for s in S]]; cb = c["bias"][[alln.index(s) for s in S]]
Q = 1 / (1 + np.exp(-(t["features"][rows] @ cw.T + cb)))
def run(det, th):
    strength = np.where(cls >= 0.3, 1 + cls, np.where(det >= th, det, -1))
    best = strength.argmax(1); said = strength.max(1) > 0
    rec = sum(1 for i in range(len(sel)) if said[i] and hasany[i] and have[i, best[i]])
    false = sum(1 for i in range(len(sel)) if said[i] and not have[i, best[i]])
    return rec, false, said.sum()
print("photos with a setting", hasany.sum())
for th in [1.1, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15, 0.1]:
    print(f"th {th}: pooled rec/false/said {run(Q, th)}  MIL {run(P, th)}")
