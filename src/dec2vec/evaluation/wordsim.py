"""Graded similarity of single words and short phrases, from WordNet 3.0's taxonomy.

No package installable here ships MEN, SimVerb-3500, RG-65 or MTurk-771 (vecto, vec2best,
word-embeddings-benchmarks and the like download them at run time), and WordSim-353 and SimLex-999
are reserved (:mod:`dec2vec.corpora.reserved`). So the pairs are graded by the taxonomy, not by
raters: each word stands for its **most frequent sense** (the first synset in WordNet's index; only
words with two or more senses tagged in SemCor, lower case, one or two words), and a pair gets

- 3: the two words are lemmas of the same synset (synonyms: *car* / *automobile*);
- 2: their synsets share a direct hypernym (co-hyponyms: *car* / *truck* under *motor vehicle*);
- 1: same lexicographer file (the same broad field, e.g. noun.artifact) but neither of the above;
- 0: different lexicographer files of the same part of speech.

Nouns and verbs, the same number of pairs per grade. A pair that is a reserved pair is never
drawn. The leakage filter drops any training record that holds both words of one of these pairs;
the words alone stay (as whole texts they would remove every WordNet and GCIDE record of 2,636
common headwords). Since the grades come from WordNet and the pair corpora teach WordNet's and
GCIDE's definitions of these words, a model trained on them has an advantage here that a hold-out
graded by people would not give: read this task for collapse on single words, not as a
comparison with encoders trained elsewhere (docs/EVALUATION.md).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from ..corpora.wordnet import Node
from .builders import Built, rng
from .tasks import STSData

PER_GRADE = {"n": 400, "v": 200}  # full task: pairs per grade and part of speech
QUICK_PER_GRADE = {"n": 15, "v": 10}
MIN_TAGGED = 2  # senses of the word tagged in SemCor: at least two keeps to words people use
_WORD = re.compile(r"^[a-z][a-z-]*( [a-z][a-z-]*)?$")  # one or two lower-case words


@dataclass(frozen=True)
class Taxonomy:
    """One part of speech: its synsets by offset and each common word's most frequent synset."""

    pos: str
    nodes: Mapping[str, Node]
    first: Mapping[str, tuple[str, int]]  # word -> (offset, tagged senses)


def common_words(tax: Taxonomy) -> dict[str, Node]:
    """Words with ``MIN_TAGGED`` or more SemCor-tagged senses, one or two lower-case words, each mapped
    to its most frequent synset."""
    out = {}
    for w, (off, tagged) in sorted(tax.first.items()):
        if tagged >= MIN_TAGGED and _WORD.match(w) and off in tax.nodes:
            out[w] = tax.nodes[off]
    return out


def grade(a: Node, b: Node) -> int:
    if a.offset == b.offset:
        return 3
    if set(a.hypernyms) & set(b.hypernyms):
        return 2
    if a.offset in b.hypernyms or b.offset in a.hypernyms:
        return -1  # hypernym and hyponym: between the grades, left out
    return 1 if a.lexfile == b.lexfile else 0


def graded_word_pairs(
    tax: Taxonomy, per_grade: int, reserved: set[frozenset[str]], seed: int, purpose: str
) -> list[tuple[str, str, int]]:
    """``per_grade`` pairs of each grade 0–3 (fewer if the taxonomy has fewer), none reserved, no pair twice."""
    r = rng(seed, "wordnet-word-sts", f"{purpose}:{tax.pos}")
    words = common_words(tax)
    by_node: dict[str, list[str]] = defaultdict(list)
    by_hyper: dict[str, list[str]] = defaultdict(list)
    by_lexfile: dict[int, list[str]] = defaultdict(list)
    for w, n in words.items():
        by_node[n.offset].append(w)
        by_lexfile[n.lexfile].append(w)
        for h in n.hypernyms:
            by_hyper[h].append(w)
    seen: set[frozenset[str]] = set()
    out: list[tuple[str, str, int]] = []

    def take(a: str, b: str, g: int) -> bool:
        key = frozenset((a, b))
        if a == b or key in seen or key in reserved or grade(words[a], words[b]) != g:
            return False
        seen.add(key)
        out.append((a, b, g))
        return True

    groups = {3: [ws for ws in by_node.values() if len(ws) >= 2], 2: [ws for ws in by_hyper.values() if len(ws) >= 2]}
    for g in (3, 2):
        pool = sorted(groups[g])
        r.shuffle(pool)
        n = 0
        for _ in range(20 * per_grade):
            if n >= per_grade or not pool:
                break
            a, b = r.sample(r.choice(pool), 2)
            n += take(a, b, g)
    files = sorted(f for f, ws in by_lexfile.items() if len(ws) >= 2)
    all_words = sorted(words)
    for g in (1, 0):
        n = 0
        for _ in range(50 * per_grade):
            if n >= per_grade:
                break
            if g == 1:
                a, b = r.sample(by_lexfile[r.choice(files)], 2)
            else:
                a, b = r.sample(all_words, 2)
            n += take(a, b, g)
    return out


def to_sts(pairs: list[tuple[str, str, int]]) -> STSData:
    texts: list[str] = []
    index: dict[str, int] = {}
    for a, b, _ in pairs:
        for w in (a, b):
            if w not in index:
                index[w] = len(texts)
                texts.append(w)
    return STSData(texts, [(index[a], index[b], float(g)) for a, b, g in pairs], 0.0, 3.0)


def wordnet_word_sts(taxonomies: list[Taxonomy], reserved: set[frozenset[str]], seed: int) -> Built:
    """The full task (``PER_GRADE`` pairs per grade and part of speech) and its quick subset."""
    full_pairs: list[tuple[str, str, int]] = []
    quick_pairs: list[tuple[str, str, int]] = []
    blocks: list[list[object]] = []
    for tax in taxonomies:
        pairs = graded_word_pairs(tax, PER_GRADE[tax.pos], reserved, seed, "full")
        full_pairs += pairs
        blocks.append([tax.pos, len(pairs)])
        k = QUICK_PER_GRADE[tax.pos]
        quick_pairs += [p for g in (3, 2, 1, 0) for p in [q for q in pairs if q[2] == g][:k]]
    full, quick = to_sts(full_pairs), to_sts(quick_pairs)
    stats = {
        "pairs": len(full.pairs),
        "words": len(full.texts),
        "per_grade": {str(g): n for g, n in sorted(Counter(int(s) for _, _, s in full.pairs).items())},
        "pairs_per_pos": blocks,  # the pairs come in this order: one run per part of speech
        "multiword_texts": sum(1 for t in full.texts if " " in t),
        "quick_pairs": len(quick.pairs),
    }
    return full, quick, stats
