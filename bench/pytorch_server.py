#!/usr/bin/env python3
"""The PyTorch twin behind HTTP, as a PyTorch user would serve it: FastAPI + uvicorn, one process, the
model of bench/pytorch_caption.py (same encoder, decoder weights and beam search), each request's
photo captioned in FastAPI's thread pool. The same API as `captioner serve` for what the load test
uses: POST /v1/caption with the photo as the body answers {"caption": ...}; 400 for a body that is
no photo; GET /healthz.

  python3 bench/pytorch_server.py --model models/default --port 8081 --threads 2 --beam 3
"""
import argparse, io, os, sys
import torch, uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_caption import load  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--model', default='models/default')
ap.add_argument('--port', type=int, default=8081)
ap.add_argument('--threads', type=int, default=os.cpu_count())
ap.add_argument('--beam', type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(a.threads)
caption = load(a.model)
app = FastAPI()


@app.get('/healthz')
def healthz():
    return {'status': 'ready'}


@app.post('/v1/caption')
async def caption_photo(request: Request):
    body = await request.body()
    try:
        photo = Image.open(io.BytesIO(body))
        photo.load()
    except Exception as err:  # PIL raises many kinds for a bad photo
        return JSONResponse({'error': f'not a photo: {err}'}, status_code=400)
    text = await run_in_threadpool(caption, photo, a.beam)
    return {'caption': text}


uvicorn.run(app, host='127.0.0.1', port=a.port, log_level='warning')
