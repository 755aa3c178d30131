#!/usr/bin/env bash
# Setting detectors beyond the shipped ones (docs/RESULTS.md, "Saying only what the photo shows",
# "Tried for the setting goal"): region detectors with a noisy-OR over the 7x7 grid (Fang et al.
# 2015's multiple-instance form) and detectors fitted on Flickr8k plus the fitted half's labels.
# Needs numpy (python3 -m venv ~/venv-np && ~/venv-np/bin/pip install numpy) as $PY, the work
# folder and features of recipes/full_run.sh in work/, and ../shared/data beside the repository.
#   PY=~/venv-np/bin/python bash recipes/setting_study/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:?a python with numpy}
bin=./target/release/captioner
study=work/setting-study
mkdir -p "$study" work/fit
here=recipes/setting_study
ls ../shared/data/imagenet-sample/*.JPEG | sort > work/fit/all.list
head -250 work/fit/all.list > work/fit/fit.list
tail -250 work/fit/all.list > work/fit/held.list
for half in fit held; do "$bin" caption --json --list work/fit/$half.list > work/fit/base-$half.jsonl 2>/dev/null; done
"$bin" features --images ../shared/data/imagenet-sample --out "$study/inet.safetensors" --grid --classes
cp $here/*.py "$study/"
cd "$study"
B0=-6 $PY proto.py 1e-3 600 && mv mil.npz mil2.npz
$PY devap.py mil2.npz                       # dev AP: pooled detectors against region (MIL) ones
$PY evalmil.py mil2.npz fit                 # MIL detectors on the fitted half, per setting
$PY sim.py fit mil2.npz                     # the strongest backed setting: named / false / said
for w in 5 20; do $PY joint.py $w 1e-3 j$w.npz; $PY simp.py fit j$w.npz; $PY simp.py held j$w.npz; done
