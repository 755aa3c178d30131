"""The need rule's fit from bench/ground_fit.sh's caption runs (see there).
usage: ground_fit.py DESCRIPTIONS OUT_DIR OBJECT_NAMED_PY"""
import json, os, re, sys
from pycocoevalcap.cider.cider import Cider

descriptions, out, object_named = sys.argv[1:4]
ns = {}
exec(open(object_named).read().replace("\nmain()\n", "\n"), ns)
synsets = ns["load"]("/usr/share/wordnet")
refs = {}
for line in open(descriptions):
    image, caption = line.rstrip("\n").split(" ", 1)
    refs.setdefault(image, []).append(caption)


def rows(name):
    lines = (json.loads(line) for line in open(os.path.join(out, name)))
    return {os.path.splitext(os.path.basename(j["image"]))[0]: j for j in lines if "caption" in j}


def cider(captions):
    ids = sorted(captions)
    _, scores = Cider().compute_score({i: refs[i] for i in ids}, {i: [captions[i]] for i in ids})
    return dict(zip(ids, scores))


def named(image, j):
    wnid = re.match(r"n(\d{8})_", image).group(1)
    caption = " " + re.sub(r"[^a-z ]", " ", j["caption"].lower()) + " "
    return any(re.search(r"\b" + re.escape(w) + r"s?\b", caption) for w in ns["names"](synsets, wnid))


# Per photo: class probability p, familiarity f, and what grounding it changes (dev: CIDEr-D x100
# over the split; imagenet-sample: named or not).
table = []
off, forced = rows("dev-off.jsonl"), rows("dev-forced.jsonl")
c_off = cider({i: off[i]["tokens"] for i in off})
c_forced = cider({i: forced[i]["tokens"] for i in off})
for i in off:
    if off[i]["tokens"] != forced[i]["tokens"]:
        table.append(("dev", off[i], (c_forced[i] - c_off[i]) * 100 / len(off)))
off, forced = rows("sample-off.jsonl"), rows("sample-forced.jsonl")
named_off = sum(named(i, off[i]) for i in off)
for i in off:
    if off[i]["caption"] != forced[i]["caption"]:
        table.append(("sample", off[i], named(i, forced[i]) - named(i, off[i])))
target = round(0.8 * len(off))
print(f"dev: {len(c_off)} photos, {sum(s == 'dev' for s, _, _ in table)} changed when forced; "
      f"imagenet-sample: {named_off}/{len(off)} named off, target {target}")
for c in (2, 3, 4, 5, 6, 7, 8, 10, 12):
    need = lambda j: j["classes"][0]["probability"] + c * (1 - j["familiarity"])
    named_now, dev_change, grounded = named_off, 0.0, 0
    for s, j, change in sorted(table, key=lambda r: -need(r[1])):
        if s == "dev":
            dev_change += change
            grounded += 1
        else:
            named_now += change
        if named_now >= target:
            print(f"c {c:2}: T {need(j):.3f}, dev CIDEr-D {dev_change:+.2f}, {grounded} dev photos grounded")
            break
    else:
        print(f"c {c:2}: never names {target}")
