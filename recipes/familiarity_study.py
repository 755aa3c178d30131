"""Other measures of a photo's familiarity to the training photos, for recipes/ground_fit.py to fit
(docs/RESULTS.md, "Naming what it sees", session 14): the mean cosine similarity to the 5 nearest
training photos (all kept), and 256 k-means centroids from five numpy seeds, by the nearest one (as
src/familiar.rs) or by the mean of the 5 nearest.
usage: familiarity_study.py FEATURES SPLITS_JSON SAMPLE_FEATURES OUT.json
  FEATURES: the features file the model was trained on; SAMPLE_FEATURES: `captioner features
  --images ../shared/data/imagenet-sample --out F`. Needs numpy."""
import json, struct, sys
import numpy as np

features_path, splits_path, sample_path, out_path = sys.argv[1:5]


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        tensor = header["features"]
        start, end = tensor["data_offsets"]
        f.seek(8 + n + start)
        rows = np.frombuffer(f.read(end - start), dtype=np.float32).reshape(tensor["shape"])
    return json.loads(header["__metadata__"]["ids"]), rows


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


ids, features = load(features_path)
row = {i: k for k, i in enumerate(ids)}
splits = json.load(open(splits_path))
train = unit(features[[row[i] for i in splits["train"]]])
sample_ids, sample = load(sample_path)
photos = splits["dev"] + sample_ids
queries = unit(np.concatenate([features[[row[i] for i in splits["dev"]]], sample]))

variants = {}
nearest = -np.sort(-(queries @ train.T), axis=1)
variants["mean of the 5 nearest training photos"] = nearest[:, :5].mean(1)
for seed in range(5):
    rng = np.random.default_rng(100 + seed)
    centroids = train[rng.choice(len(train), 256, replace=False)].copy()
    for _ in range(20):
        assigned = np.argmax(train @ centroids.T, axis=1)
        for c in range(256):
            members = train[assigned == c]
            if len(members):
                centroids[c] = members.mean(0)
        centroids = unit(centroids)
    similarity = -np.sort(-(queries @ centroids.T), axis=1)
    variants[f"256 centroids, numpy seed {seed}, nearest"] = similarity[:, 0]
    variants[f"256 centroids, numpy seed {seed}, mean of the 5 nearest"] = similarity[:, :5].mean(1)
json.dump({name: dict(zip(photos, map(float, v))) for name, v in variants.items()}, open(out_path, "w"))
