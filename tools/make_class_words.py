#!/usr/bin/env python3
"""Writes data/imagenet_class_words.tsv: what to call each of the 1,000 ImageNet classes in a sentence.

  python3 tools/make_class_words.py [--wordnet /usr/share/wordnet] [--out data/imagenet_class_words.tsv]

Sources: WordNet 3.0 (Debian package `wordnet-base`; an ImageNet wnid n<offset> is the noun synset at that
offset of data.noun) and the class order of the ImageNet-1k classifiers (the 1,000 wnids sorted, which is
timm's `imagenet_synsets.txt`; the script fetches timm's wheel from PyPI with pip to read it). Deterministic:
the same inputs give the same bytes (tests/class_words.rs checks that the binary embeds this output).

One line per class, in class order, tab-separated:
  index  wnid  name  name_article  name_plural  short  short_article  short_plural  ancestors  ancestor_plurals
  ancestor_articles
name: the synset's first lemma ("great grey owl", "tabby", "tench"); short: what people call it, the first
synset on the way up (itself included) whose one-word first lemma people use often in that sense, by
WordNet's sense-tag counts ("owl", "cat", "fish"; "thimble" stays "thimble": "cap" is common, but not in the
sense of thimble's parent); ancestors: the first lemma of each hypernym up to the root, '|'-separated,
nearest first (the decoder's vocabulary picks the nearest one it knows); ancestor_plurals and ancestor_articles:
their plurals and articles, in the same order (a caption may say "two birds" or "an animal").
"""
import argparse, glob, os, re, subprocess, sys, tempfile, zipfile

TIMM = "timm==1.0.31"
SYNSETS = "timm/data/_info/imagenet_synsets.txt"
# A one-word lemma counts as "what people say" when WordNet's semantic concordance (cntlist.rev) tagged it
# at least this often in that synset's sense ("owl" 3, "cat" 18, "tabby" 0).
COMMON = 3
# Words never used as a short name: too generic to name what is in a photo.
GENERIC = set("""entity object whole organism being animal artifact artefact device structure thing matter
substance food person vertebrate invertebrate unit abstraction container commodity covering equipment
implement plant mammal conveyance vehicle article part instrument instrumentality game piece system
material fabric cloth protective_covering clothing garment attire wear apparel furniture furnishing""".split())
# Plurals people use that WordNet's exception list does not give.
SAME_PLURAL = set("fish sheep deer bison moose swine salmon trout".split())
USUAL_PLURAL = {"person": "people"}
# Singular nouns that end like plurals ("binoculars" and "sunglasses" are plural already).
SINGULAR_S = {"lens", "bus", "canvas", "iris", "chassis", "species"}
AN_EXCEPTIONS = ("uni", "use", "usu", "uti", "ure", "eu", "one", "ewe")
AN_SILENT_H = ("hour", "honest", "honor", "honour", "heir")


def load_wordnet(wndir):
    synsets, counts, plurals = {}, {}, {}
    for line in open(os.path.join(wndir, "data.noun"), encoding="latin-1"):
        if line.startswith("  "):
            continue
        f = line.split(" ")
        offset, count = f[0], int(f[3], 16)
        lemmas = [re.sub(r"\(.*\)$", "", f[4 + 2 * i]).replace("_", " ") for i in range(count)]
        i = 4 + 2 * count
        pointers = int(f[i]); i += 1
        hypernyms = []
        for _ in range(pointers):
            symbol, target, pos = f[i], f[i + 1], f[i + 2]; i += 4
            if symbol in ("@", "@i") and pos == "n":
                hypernyms.append(target)
        synsets[offset] = (lemmas, hypernyms)
    # index.noun lists each lemma's synsets in sense-number order: (lemma, sense number) -> synset.
    senses, first_sense = {}, {}
    for line in open(os.path.join(wndir, "index.noun"), encoding="latin-1"):
        if line.startswith("  "):
            continue
        f = line.split()
        lemma, pointers = f[0], int(f[3])
        for number, offset in enumerate(f[4 + pointers + 2:], start=1):
            senses[(lemma, number)] = offset
        first_sense[lemma.replace("_", " ")] = f[4 + pointers + 2]
    for line in open(os.path.join(wndir, "cntlist.rev"), encoding="latin-1"):
        key, number, tagged = line.split()
        lemma, sense = key.split("%", 1)
        offset = senses.get((lemma, int(number)))
        if sense.startswith("1:") and offset:
            for key in [(lemma.replace("_", " "), offset), (lemma.replace("_", " "), None)]:
                counts[key] = counts.get(key, 0) + int(tagged)
    for line in open(os.path.join(wndir, "noun.exc"), encoding="latin-1"):
        plural, singular = line.split()[:2]
        plurals.setdefault(singular.replace("_", " "), plural.replace("_", " "))
    return synsets, counts, plurals, first_sense


def article(phrase):
    w = phrase.lower()
    if w.startswith(AN_SILENT_H):
        return "an"
    if w[0] in "aeio" or (w[0] == "u" and not w.startswith(AN_EXCEPTIONS)):
        return "a" if w.startswith(("one", "eu")) else "an"
    return "a"


def plural(phrase, irregular):
    head, _, last = phrase.rpartition(" ")
    if last in SAME_PLURAL or last.endswith("fish"):
        word = last
    elif last in USUAL_PLURAL:
        word = USUAL_PLURAL[last]
    elif phrase in irregular:
        return irregular[phrase]
    elif last in irregular:
        word = irregular[last]
    elif re.search(r"[^aeiusy]s$|[^aeiu]es$", last) and last not in irregular and last not in SINGULAR_S:
        word = last  # already plural: "binoculars", "sunglasses"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        word = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return (head + " " + word) if head else word


def chain(synsets, first_sense, offset):
    """The synset and its hypernyms up to the root. Where a synset has several, the first whose first
    lemma means it in that lemma's first sense: "game bird" is a "game" (animals hunted) and a
    "gallinaceous bird", and "game" is first a contest, which a caption means by it."""
    out = []
    while offset and offset not in out:
        out.append(offset)
        hypernyms = synsets[offset][1]
        usual = [h for h in hypernyms if first_sense.get(synsets[h][0][0].lower()) == h]
        offset = (usual or hypernyms or [None])[0]
    return out


def short_name(synsets, counts, offsets):
    name = synsets[offsets[0]][0][0].lower()
    # "great grey owl" -> "owl" when an ancestor is called by the name's last word.
    head = name.rpartition(" ")[2]
    if " " in name and head not in GENERIC and any(head in [l.lower() for l in synsets[o][0]] for o in offsets[1:]):
        return head
    # Else the first synset on the way up whose first lemma is one common word: "tabby" -> "cat". The
    # class's own word counts in all its senses ("hammer"); an ancestor's only in its own sense, so that
    # a thimble does not become a "cap".
    for depth, offset in enumerate(offsets):
        lemma = synsets[offset][0][0]
        if lemma.lower() in GENERIC:
            break
        tagged = counts.get((lemma, None if depth == 0 else offset), 0)
        if " " not in lemma and "-" not in lemma and lemma.islower() and tagged >= COMMON:
            return lemma
    return name


def wnids():
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, TIMM], check=True)
        wheel = glob.glob(os.path.join(tmp, "timm-*.whl"))[0]
        with zipfile.ZipFile(wheel) as z:
            return z.read(SYNSETS).decode().split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--out", default="data/imagenet_class_words.tsv")
    a = ap.parse_args()
    synsets, counts, irregular, first_sense = load_wordnet(a.wordnet)
    classes = wnids()
    assert len(classes) == 1000 and classes == sorted(classes), "the classifiers' order is the sorted wnids"
    lines = []
    for index, wnid in enumerate(classes):
        offsets = chain(synsets, first_sense, wnid[1:])
        name = synsets[offsets[0]][0][0].lower()
        short = short_name(synsets, counts, offsets)
        ancestors = [synsets[o][0][0].lower() for o in offsets[1:]]
        lines.append("\t".join([str(index), wnid, name, article(name), plural(name, irregular),
                                short, article(short), plural(short, irregular), "|".join(ancestors),
                                "|".join(plural(a, irregular) for a in ancestors),
                                "|".join(article(a) for a in ancestors)]))
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {a.out}: {len(lines)} classes")


main()
