#!/usr/bin/env python3
"""PyTorch baseline for training speed: the merge decoder written the way a PyTorch user would write it.

It reads the captions and vocabulary of a `captioner prepare` work folder, so both trainers see the same
tokens (the default: PTB tokens, min count 5):
  python3 bench/pytorch_merge_train.py --work work/flickr8k --batch 64 --steps 60 --threads 2
  python3 bench/pytorch_merge_train.py --gemm --threads 2     # the machine's FP32 matrix-product rate
Model: features -> Dropout(.5) -> Linear(F, 256) + ReLU; tokens -> Embedding(V, 256, padding_idx=0) ->
Dropout(.5) -> nn.LSTM(256); add -> Linear(256, 256) + ReLU -> Linear(256, V); cross-entropy over every
next-word position (padding ignored); Adam 1e-3. Batches: random training captions, padded to their own
longest. Image features are random (fixed seed): throughput does not depend on their values.
Prints one line: captions_per_s=<float> step_s=<median> vocab=<V> threads=<n> (or gemm_gflops=<float>).
Needs the packages in bench/requirements.txt, in a virtual environment of its own.
"""
import argparse, os, random, statistics, time
import torch, torch.nn as nn
from workfolder import training_captions

ap = argparse.ArgumentParser()
ap.add_argument('--work', help='work folder written by `captioner prepare`')
ap.add_argument('--feat-dim', type=int, default=1280)
ap.add_argument('--batch', type=int, default=64)
ap.add_argument('--steps', type=int, default=60)
ap.add_argument('--warmup', type=int, default=5)
ap.add_argument('--threads', type=int, default=os.cpu_count())
ap.add_argument('--gemm', action='store_true', help='time a 2048^3 FP32 matrix product instead')
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
random.seed(0)

if a.gemm:
    n = 2048
    x, y = torch.rand(n, n), torch.rand(n, n)
    for _ in range(3):
        x @ y
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        x @ y
        times.append(time.perf_counter() - t0)
    print(f'gemm_gflops={2 * n ** 3 / statistics.median(times) / 1e9:.1f} threads={a.threads}')
    raise SystemExit

V, caps, imgs = training_captions(a.work)
img_i = {k: i for i, k in enumerate(imgs)}
feats = torch.rand(len(imgs), a.feat_dim)


class Merge(nn.Module):
    def __init__(s):
        super().__init__()
        s.fe = nn.Sequential(nn.Dropout(0.5), nn.Linear(a.feat_dim, 256), nn.ReLU())
        s.emb = nn.Embedding(V, 256, padding_idx=0)
        s.drop = nn.Dropout(0.5)
        s.lstm = nn.LSTM(256, 256, batch_first=True)
        s.head = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, V))

    def forward(s, f, x):
        h, _ = s.lstm(s.drop(s.emb(x)))
        return s.head(h + s.fe(f)[:, None, :])


m = Merge()
opt = torch.optim.Adam(m.parameters(), 1e-3)
lossf = nn.CrossEntropyLoss(ignore_index=0)


def batch():
    sel = random.sample(caps, a.batch)
    T = max(len(c) for _, c in sel) - 1
    x = torch.zeros(a.batch, T, dtype=torch.long)
    y = torch.zeros(a.batch, T, dtype=torch.long)
    for b, (_, ids) in enumerate(sel):
        x[b, :len(ids) - 1] = torch.tensor(ids[:-1])
        y[b, :len(ids) - 1] = torch.tensor(ids[1:])
    return feats[[img_i[i] for i, _ in sel]], x, y


times = []
for s in range(a.warmup + a.steps):
    f, x, y = batch()
    t0 = time.perf_counter()
    logits = m(f, x)
    loss = lossf(logits.reshape(-1, V), y.reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    if s >= a.warmup:
        times.append(time.perf_counter() - t0)
st = statistics.median(times)
print(f'captions_per_s={a.batch / st:.1f} step_s={st:.4f} vocab={V} threads={a.threads} loss={loss.item():.3f}')
