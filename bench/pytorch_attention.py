#!/usr/bin/env python3
"""The attention decoder's PyTorch twin: Show, Attend and Tell (soft) written the way a PyTorch user
writes it (the layout of the widely used PyTorch tutorial): per-batch padding, captions sorted by
length, an nn.LSTMCell loop over the steps that shrinks the batch as captions end.

Two uses:
  python3 bench/pytorch_attention.py --golden fixtures/attention_golden_f64.safetensors --dtype f64
      writes a tiny model, its inputs, logits, attention weights, loss, every gradient and the
      parameters after one Adam step (tests/decoder_golden.rs reads it)
  python3 bench/pytorch_attention.py --work W --batch 64 --steps 60 --threads 2
      training-step speed on the captions of a `captioner prepare` work folder, random 7x7x1280 grids;
      prints captions_per_s=<float> step_s=<median> vocab=<V> threads=<n>
Needs the packages in bench/requirements.txt.
"""
import argparse, json, os, random, statistics, time
import torch, torch.nn as nn
from workfolder import training_captions

ap = argparse.ArgumentParser()
ap.add_argument('--golden', help='write the golden file here')
ap.add_argument('--dtype', choices=['f32', 'f64'], default='f64')
ap.add_argument('--work', help='work folder written by `captioner prepare`')
ap.add_argument('--batch', type=int, default=64)
ap.add_argument('--steps', type=int, default=60)
ap.add_argument('--warmup', type=int, default=5)
ap.add_argument('--threads', type=int, default=os.cpu_count())
ap.add_argument('--embed', type=int, default=512)
ap.add_argument('--hidden', type=int, default=512)
ap.add_argument('--attention', type=int, default=256)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
random.seed(0)


class Decoder(nn.Module):
    def __init__(s, V, C, E, H, A, dropout):
        super().__init__()
        s.init_h, s.init_c = nn.Linear(C, H), nn.Linear(C, H)
        s.enc_att, s.dec_att, s.full_att = nn.Linear(C, A), nn.Linear(H, A), nn.Linear(A, 1, bias=False)
        s.f_beta = nn.Linear(H, C)
        s.emb = nn.Embedding(V, E)
        s.lstm = nn.LSTMCell(E + C, H)
        s.drop = nn.Dropout(dropout)
        s.out = nn.Linear(H, V)
        nn.init.uniform_(s.emb.weight, -0.1, 0.1)
        nn.init.uniform_(s.out.weight, -0.1, 0.1)
        nn.init.zeros_(s.out.bias)

    def forward(s, grid, caps, lengths):
        """grid [B, R, C]; caps [B, T+1] padded, sorted longest first; lengths: tokens per caption."""
        B, R, _ = grid.shape
        steps = [l - 1 for l in lengths]
        mean = grid.mean(dim=1)
        h, c = s.init_h(mean), s.init_c(mean)
        p = s.enc_att(grid)
        emb = s.emb(caps)
        T = max(steps)
        logits = grid.new_zeros(B, T, s.out.out_features)
        alphas = grid.new_zeros(B, T, R)
        for t in range(T):
            n = sum(l > t for l in steps)
            e = s.full_att(torch.relu(p[:n] + s.dec_att(h[:n]).unsqueeze(1))).squeeze(2)
            alpha = torch.softmax(e, dim=1)
            context = (grid[:n] * alpha.unsqueeze(2)).sum(dim=1)
            gate = torch.sigmoid(s.f_beta(h[:n]))
            h, c = s.lstm(torch.cat([emb[:n, t], gate * context], dim=1), (h[:n], c[:n]))
            logits[:n, t] = s.out(s.drop(h))
            alphas[:n, t] = alpha
        return logits, alphas


def loss_of(logits, alphas, caps, lengths, alpha_c):
    steps = [l - 1 for l in lengths]
    mask = torch.zeros(caps.shape[0], max(steps), dtype=torch.bool)
    for b, n in enumerate(steps):
        mask[b, :n] = True
    xent = nn.functional.cross_entropy(logits[mask], caps[:, 1:][mask])
    return xent + alpha_c * ((1.0 - alphas.sum(dim=1)) ** 2).mean()


def named(m, E):
    """The model's tensors under captioner's names (decoder/attention.rs PARAMETERS)."""
    w_ih = m.lstm.weight_ih
    return {
        'init_h.weight': m.init_h.weight, 'init_h.bias': m.init_h.bias,
        'init_c.weight': m.init_c.weight, 'init_c.bias': m.init_c.bias,
        'enc_att.weight': m.enc_att.weight, 'enc_att.bias': m.enc_att.bias,
        'dec_att.weight': m.dec_att.weight, 'dec_att.bias': m.dec_att.bias,
        'full_att.weight': m.full_att.weight,
        'f_beta.weight': m.f_beta.weight, 'f_beta.bias': m.f_beta.bias,
        'emb.weight': m.emb.weight,
        'lstm.weight_ih_word': w_ih[:, :E], 'lstm.weight_ih_context': w_ih[:, E:],
        'lstm.weight_hh': m.lstm.weight_hh,
        'lstm.bias_ih': m.lstm.bias_ih, 'lstm.bias_hh': m.lstm.bias_hh,
        'out.weight': m.out.weight, 'out.bias': m.out.bias,
    }


def golden():
    from safetensors.torch import save_file
    dtype = torch.float64 if a.dtype == 'f64' else torch.float32
    V, C, R, E, H, A, alpha_c, lr = 11, 6, 5, 4, 5, 3, 1.0, 1e-3
    m = Decoder(V, C, E, H, A, 0.0).to(dtype)
    # Captions with startseq (2) and endseq (3), sorted longest first, padded with 0.
    captions = [[2, 4, 5, 6, 7, 8, 3], [2, 9, 4, 10, 3], [2, 5, 5, 3], [2, 6, 3]]
    lengths = [len(c) for c in captions]
    caps = torch.zeros(len(captions), max(lengths), dtype=torch.long)
    for b, cap in enumerate(captions):
        caps[b, :len(cap)] = torch.tensor(cap)
    grid = torch.rand(len(captions), R, C, dtype=dtype) * 2
    logits, alphas = m(grid, caps, lengths)
    loss = loss_of(logits, alphas, caps, lengths, alpha_c)
    loss.backward()
    tensors = {'grid': grid, 'logits': logits, 'alphas': alphas, 'loss': loss.reshape(1)}
    w_ih_grad = m.lstm.weight_ih.grad
    for name, t in named(m, E).items():
        tensors[name] = t.detach().clone()  # before the Adam step below changes it in place
        if name == 'lstm.weight_ih_word':
            grad = w_ih_grad[:, :E]
        elif name == 'lstm.weight_ih_context':
            grad = w_ih_grad[:, E:]
        else:
            grad = t.grad
        tensors['grad.' + name] = grad.clone()
    # One Adam step with captioner's defaults (Keras's eps).
    opt = torch.optim.Adam(m.parameters(), lr=lr, eps=1e-7)
    opt.step()
    for name, t in named(m, E).items():
        tensors['adam1.' + name] = t.detach().clone()
    tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    sizes = dict(V=V, C=C, R=R, E=E, H=H, A=A, T=max(lengths) - 1)
    save_file(tensors, a.golden, metadata={
        'sizes': json.dumps(sizes), 'captions': json.dumps(captions),
        'alpha_c': str(alpha_c), 'lr': str(lr),
        'written_by': f'bench/pytorch_attention.py, torch {torch.__version__}'})
    print(f'wrote {a.golden}: loss {loss.item():.12f}')


def speed():
    V, caps, imgs = training_captions(a.work)
    img_i = {k: i % 512 for i, k in enumerate(imgs)}
    # Throughput does not depend on the grids' values: 512 random ones, shared by the images.
    grids = torch.rand(512, 49, 1280)
    m = Decoder(V, 1280, a.embed, a.hidden, a.attention, 0.5)
    opt = torch.optim.Adam(m.parameters(), 4e-4)
    times = []
    for step in range(a.warmup + a.steps):
        sel = sorted(random.sample(caps, a.batch), key=lambda c: -len(c[1]))
        lengths = [len(c) for _, c in sel]
        x = torch.zeros(a.batch, max(lengths), dtype=torch.long)
        for b, (_, ids) in enumerate(sel):
            x[b, :len(ids)] = torch.tensor(ids)
        grid = grids[[img_i[i] for i, _ in sel]]
        t0 = time.perf_counter()
        logits, alphas = m(grid, x, lengths)
        loss = loss_of(logits, alphas, x, lengths, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    st = statistics.median(times)
    print(f'captions_per_s={a.batch / st:.1f} step_s={st:.4f} vocab={V} threads={a.threads} loss={loss.item():.3f}')


if a.golden:
    golden()
else:
    speed()
