#!/bin/bash
# Caption a photo collection as a Slurm job array: each array task takes its part of the photos by
# SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (captioner reads them; no --shard needed), appends its
# captions to its own file, and resumes where it stopped if it is preempted and requeued.
#
#   sbatch deploy/slurm-array.sh photos.txt        # photos.txt: one photo, folder or .tar shard per line
#   captioner merge --expect photos.txt --out captions.jsonl captions/part-*.jsonl   # once all are done
#
#SBATCH --job-name=captioner
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=2G
#SBATCH --requeue
#SBATCH --output=captions/log-%A_%a.txt
set -euo pipefail
LIST=${1:?usage: sbatch deploy/slurm-array.sh photos.txt}
mkdir -p captions
# The encoder weights are fetched once into the shared cache (or baked in, as in the container image).
export CAPTIONER_CACHE=${CAPTIONER_CACHE:-$HOME/.cache/captioner}
captioner caption --list "$LIST" --threads "$SLURM_CPUS_PER_TASK" \
  --out "captions/part-${SLURM_ARRAY_TASK_ID}.jsonl"
