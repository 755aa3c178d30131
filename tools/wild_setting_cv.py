#!/usr/bin/env python3
"""Would a setting classifier fitted on the labelled fitting half of imagenet-sample help? Simulated
by 5-fold cross-validation on that half alone (the held-out half is not read): one logistic
regression per setting (water, snow, grass, sand, street, indoors, trees, rocks; 8 or more photos
with it) over the standardised pooled features, and each composed caption ("A photo of ...") that
names no setting gets the most probable setting's phrase when its out-of-fold probability reaches
TAU. Writes the changed captions as JSON lines for ../shared/tools/wild_score.py, and on stderr
each setting's out-of-fold detections at TAU.

  captioner features --images ../shared/data/imagenet-sample --out in.safetensors --classes
  captioner caption --json --list fit.list > fit.jsonl          # fit.list: the first 250 photos
  python3 tools/wild_setting_cv.py in.safetensors fit.jsonl C TAU > sim.jsonl
Needs numpy, scikit-learn and safetensors (a virtual environment of its own)."""
import csv, json, os, struct, sys
import numpy as np
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

PHRASE = {"water": "in the water", "snow": "in the snow", "grass": "on the grass", "sand": "on the sand",
          "street": "on the street", "indoors": "indoors", "trees": "in the trees", "rocks": "on the rocks"}
SETTING_WORDS = set("water pool lake ocean sea river stream waves beach sand snow grass field street road "
                    "indoors room trees forest woods rock rocks sky".split())


def main():
    features, captions, C, tau = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    here = os.path.dirname(os.path.abspath(__file__))
    labels_path = os.path.join(here, "..", "..", "shared", "data", "imagenet-sample", "labels.tsv")
    labels = {r["file"]: r for r in csv.DictReader(open(labels_path), delimiter="\t")}
    raw = open(features, "rb").read()
    header = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
    ids = json.loads(header["__metadata__"]["ids"])
    X = load_file(features)["features"]
    fit = sorted(range(len(ids)), key=lambda i: ids[i])[:250]
    Xf = X[fit]
    Xf = (Xf - Xf.mean(0)) / (Xf.std(0) + 1e-6)
    has = lambda i, s: s in {x.strip() for x in labels[ids[i] + ".JPEG"]["setting"].split(",")}
    prob = {}
    for s in PHRASE:
        y = np.array([has(i, s) for i in fit], dtype=int)
        if y.sum() >= 8:
            model = LogisticRegression(C=C, max_iter=3000)
            folds = StratifiedKFold(5, shuffle=True, random_state=0)
            prob[s] = cross_val_predict(model, Xf, y, cv=folds, method="predict_proba")[:, 1]
            hits = prob[s] >= tau
            print(f"{s}: {y.sum()} photos have it; out-of-fold >= {tau}: {(hits & (y == 1)).sum()} right, "
                  f"{(hits & (y == 0)).sum()} wrong", file=sys.stderr)
    row_of = {ids[i]: j for j, i in enumerate(fit)}
    changed = 0
    for line in open(captions):
        c = json.loads(line)
        j = row_of[os.path.basename(c["image"]).rsplit(".", 1)[0]]
        words = {w.strip(".").lower() for w in c["caption"].split()}
        if c["caption"].startswith("A photo") and not words & SETTING_WORDS:
            p, s = max((prob[s][j], s) for s in prob)
            if p >= tau:
                c["caption"] = c["caption"].rstrip(".") + " " + PHRASE[s] + "."
                changed += 1
        print(json.dumps(c))
    print(f"{changed} captions given a setting", file=sys.stderr)


if __name__ == "__main__":
    main()
