#!/usr/bin/env python3
"""Scores a COCO results file with pycocoevalcap 1.2 itself, the way published captioning numbers are made:
PTBTokenizer on the raw references and on the candidates, then Bleu(4), Meteor, Rouge and Cider.

  python3 tools/coco_eval.py --captions flickr8k/Flickr8k.token.txt --results eval/results_beam3.json

References are every raw caption of each image in the results file. Prints one JSON object with the
corpus scores under the keys of `captioner evaluate`'s scores.json (bleu1..bleu4, meteor, rouge_l, cider).
Needs Java and `pip install pycocoevalcap==1.2` (in a virtual environment of its own).
"""
import argparse, collections, json
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider

ap = argparse.ArgumentParser()
ap.add_argument('--captions', required=True, help='Flickr8k.token.txt')
ap.add_argument('--results', required=True, help='[{"image_id", "caption"}]')
a = ap.parse_args()

raw = collections.defaultdict(list)
for line in open(a.captions, encoding='utf-8'):
    if not line.strip():
        continue
    key, caption = line.rstrip('\n').split('\t', 1)
    image = key.rsplit('#', 1)[0]
    for ext in ('.jpg', '.jpeg', '.png'):
        if image.endswith(ext):
            image = image[: -len(ext)]
            break
    raw[image].append({'caption': caption})
results = json.load(open(a.results, encoding='utf-8'))
gts = {r['image_id']: raw[r['image_id']] for r in results}
res = {r['image_id']: [{'caption': r['caption']}] for r in results}
tokenizer = PTBTokenizer()
gts, res = tokenizer.tokenize(gts), tokenizer.tokenize(res)
scores = {}
bleu, _ = Bleu(4).compute_score(gts, res)
for n, value in enumerate(bleu, 1):
    scores[f'bleu{n}'] = value
scores['meteor'], _ = Meteor().compute_score(gts, res)
scores['rouge_l'], _ = Rouge().compute_score(gts, res)
scores['cider'], _ = Cider().compute_score(gts, res)
print(json.dumps(scores))
