"""The need rule's fit from recipes/ground_fit.sh's caption runs (see there).
usage: ground_fit.py DESCRIPTIONS OUT_DIR OBJECT_NAMED_PY [VARIANTS.json]
VARIANTS.json ({name: {photo id: familiarity}}, from recipes/familiarity_study.py) fits the rule with
other measures of familiarity too; without it, the model's own (caption --json's "familiarity")."""
import json, os, re, sys
from pycocoevalcap.cider.cider import Cider

descriptions, out, object_named = sys.argv[1:4]
variants = json.load(open(sys.argv[4])) if len(sys.argv) > 4 else {}
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
        table.append(("dev", i, off[i], (c_forced[i] - c_off[i]) * 100 / len(off)))
off, forced = rows("sample-off.jsonl"), rows("sample-forced.jsonl")
named_off = sum(named(i, off[i]) for i in off)
for i in off:
    if off[i]["caption"] != forced[i]["caption"]:
        table.append(("sample", i, off[i], named(i, forced[i]) - named(i, off[i])))
target = round(0.8 * len(off))
print(f"dev: {len(c_off)} photos, {sum(r[0] == 'dev' for r in table)} changed when forced; "
      f"imagenet-sample: {named_off}/{len(off)} named off, target {target}")
variants = {"the model's": {i: j["familiarity"] for _, i, j, _ in table}} | variants
for name, familiarity in variants.items():
    print(f"familiarity: {name}")
    for c in (2, 3, 4, 5, 6, 7, 8, 10, 12):
        need = lambda r: r[2]["classes"][0]["probability"] + c * (1 - familiarity[r[1]])
        named_now, dev_change, grounded = named_off, 0.0, 0
        for row in sorted(table, key=lambda r: -need(r)):
            if row[0] == "dev":
                dev_change += row[3]
                grounded += 1
            else:
                named_now += row[3]
            if named_now >= target:
                print(f"  c {c:2}: T {need(row):.3f}, dev CIDEr-D {dev_change:+.2f}, {grounded} dev photos grounded")
                break
        else:
            print(f"  c {c:2}: never names {target}")
