import json, numpy as np, sys, csv, os, time
from st import load
S = ["water","snow","grass","sand","street","indoors","trees","rocks","sky"]
WORDS = {
 "water": "water pool lake ocean sea river stream waves wave pond fountain surf underwater puddle creek waterfall swimming swims swim splashes splashing splash surfing surfs wading wades",
 "snow": "snow snowy ice icy skiing skis ski snowboard snowboarding sled sledding",
 "grass": "grass grassy field fields lawn meadow yard",
 "sand": "beach sand sandy desert shore",
 "street": "street streets road sidewalk city town parking crosswalk highway alley",
 "indoors": "room kitchen couch sofa bed bedroom bathroom restaurant store shop classroom office indoors inside living",
 "trees": "forest woods trees tree",
 "rocks": "rock rocks rocky cliff cliffs mountain mountains boulder",
 "sky": "sky"}
W = {k: set(v.split()) for k, v in WORDS.items()}
t, meta = load("../features.safetensors")
ids = json.loads(meta["ids"]); idx = {x: i for i, x in enumerate(ids)}
splits = json.load(open("../flickr8k/splits.json"))
caps = {}
for line in open("../flickr8k/descriptions.txt"):
    k, c = line.split(" ", 1); caps.setdefault(k, []).append(set(c.split()))
def targets(keys):
    return np.array([[sum(bool(c & W[s]) for c in caps[k]) / len(caps[k]) for s in S] for k in keys], np.float32)
grid = t["grid"]; pooled = t["features"]
print("grid", grid.shape, "pooled==mean(grid)?", np.abs(grid[0].astype(np.float32).mean(0) - pooled[0]).max())
tr = [idx[k] for k in splits["train"]]; dv = [idx[k] for k in splits["dev"]]
Xtr = grid[tr].astype(np.float32); Ytr = targets(splits["train"])
n, R, D = Xtr.shape
mu = Xtr.reshape(-1, D).mean(0); sd = Xtr.reshape(-1, D).std(0) + 1e-3
Xs = ((Xtr - mu) / sd).reshape(-1, D)
K = len(S); w = np.zeros((D, K), np.float32); b = np.full(K, float(os.environ.get("B0", "-6")), np.float32)
m = np.zeros((D + 1, K), np.float32); v = np.zeros_like(m)
L2 = float(sys.argv[1]) if len(sys.argv) > 1 else 1e-3
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
t0 = time.time()
for step in range(1, steps + 1):
    z = Xs @ w + b                                  # [n*R, K]
    p = 1 / (1 + np.exp(-z))
    logq = np.log1p(-np.clip(p, 0, 1 - 1e-6)).reshape(n, R, K).sum(1)  # log prod(1-p)
    P = np.clip(1 - np.exp(logq), 1e-6, 1 - 1e-6)
    g = ((P - Ytr) / P / n)[:, None, :] * p.reshape(n, R, K)        # dL/dz
    g = g.reshape(-1, K)
    gw = Xs.T @ g + L2 * w; gb = g.sum(0)
    G = np.vstack([gw, gb]); m = 0.9 * m + 0.1 * G; v = 0.999 * v + 0.001 * G * G
    corr = np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step)
    upd = 0.05 * corr * m / (np.sqrt(v) + 1e-8)
    w -= upd[:-1]; b -= upd[-1]
    if step % 50 == 0:
        loss = -(Ytr * np.log(P) + (1 - Ytr) * np.log(1 - P)).mean()
        print(step, round(float(loss), 4), round(time.time() - t0, 1), flush=True)
# fold standardisation
wf = w / sd[:, None]; bf = b - mu @ wf
np.savez("mil.npz", w=wf, b=bf)
