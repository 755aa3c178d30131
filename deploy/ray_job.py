#!/usr/bin/env python3
"""Caption a photo collection on a Ray cluster: one Ray task per shard, each running the captioner
binary on its part (`--shard I/N`, the same split on every machine) into its own JSON-lines file,
then `captioner merge` joins them. A task that fails is retried by Ray; its file resumes where it
stopped. Every node needs the binary (or the container image of deploy/Dockerfile) and the photos at
the same paths.

  ray start --head --num-cpus 2
  python deploy/ray_job.py --shards 8 --out captions/ -- --list photos.txt [other caption flags]
  ray stop

Prints one JSON line: shards, seconds, the merged file and its number of captions.
"""
import argparse, json, os, subprocess, sys, time
import ray

ap = argparse.ArgumentParser()
ap.add_argument('--shards', type=int, default=8)
ap.add_argument('--out', required=True, help='folder for part-<i>.jsonl and the merged captions.jsonl')
ap.add_argument('--binary', default='captioner')
ap.add_argument('--address', default='auto', help="the cluster's address (auto: the one `ray start` made)")
ap.add_argument('--threads', type=int, default=1, help='compute threads per task (its num_cpus)')
ap.add_argument('caption_args', nargs=argparse.REMAINDER, help='after --: what to caption and how')
a = ap.parse_args()
caption_args = a.caption_args[1:] if a.caption_args[:1] == ['--'] else a.caption_args
binary = os.path.abspath(a.binary) if os.path.exists(a.binary) else a.binary
out = os.path.abspath(a.out)
os.makedirs(out, exist_ok=True)


@ray.remote(num_cpus=a.threads, max_retries=3)
def caption_shard(index):
    part = os.path.join(out, f'part-{index}.jsonl')
    run = subprocess.run([binary, 'caption', *caption_args, '--shard', f'{index}/{a.shards}',
                          '--threads', str(a.threads), '--out', part], capture_output=True, text=True)
    if run.returncode not in (0, 1):  # 1: some photos failed and were reported; the rest is done
        raise RuntimeError(f'shard {index}: {run.stderr[-2000:]}')
    return part, run.stderr.strip().splitlines()[-1:] or ['']


start = time.time()
ray.init(address=a.address, log_to_driver=False)
parts = ray.get([caption_shard.remote(i) for i in range(a.shards)])
for _, said in parts:
    print(said[0], file=sys.stderr)
merged = os.path.join(out, 'captions.jsonl')
subprocess.run([binary, 'merge', '--out', merged, *[p for p, _ in parts]], check=True, stdout=subprocess.DEVNULL)
with open(merged) as f:
    count = sum(1 for _ in f)
print(json.dumps({'shards': a.shards, 'seconds': round(time.time() - start, 2), 'merged': merged, 'captions': count}))
