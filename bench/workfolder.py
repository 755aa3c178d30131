"""The training captions of a `captioner prepare` work folder, as the PyTorch baselines read them."""
import json, os


def training_captions(work):
    """(vocabulary size, [(image id, token ids with startseq/endseq)], sorted training image ids)."""
    vocab = json.load(open(os.path.join(work, 'vocab.json')))['tokens']
    idx = {w: i for i, w in enumerate(vocab)}
    train = set(json.load(open(os.path.join(work, 'splits.json')))['train'])
    caps = []
    for line in open(os.path.join(work, 'descriptions.txt')):
        img, _, text = line.rstrip('\n').partition(' ')
        words = text.split()
        if img in train and words:
            caps.append((img, [idx['startseq']] + [idx.get(w, 1) for w in words] + [idx['endseq']]))
    return len(vocab), caps, sorted(train)
