"""The length-aware evaluation (issue 26): new task builders, scores by length bucket, reserved sets."""

from __future__ import annotations

import pytest

from dec2vec.corpora import reserved
from dec2vec.corpora.leakage import LeakageFilter
from dec2vec.corpora.readers import TASK_FILES, Article
from dec2vec.corpora.records import Record
from dec2vec.corpora.wordnet import Node, first_senses, parse_node
from dec2vec.evaluation import lengths, passages, stats, wordsim
from dec2vec.evaluation.tasks import ClassificationData, RetrievalData, STSData, TaskData

# ------------------------------------------------------------------------------------------ lengths


def test_proxy_tokens_and_buckets():
    assert lengths.proxy_tokens("Hello, world!") == 4
    assert lengths.bucket_of(16) == "<=16" and lengths.bucket_of(17) == "17-64"
    assert lengths.bucket_of(512) == "257-512" and lengths.bucket_of(513) == ">512"


def test_by_bucket_recomputes_the_statistic_per_bucket():
    items = {"kind": "mean", "unit": "query", "values": [1.0] * 10 + [0.0] * 10 + [0.5] * 3}
    out = lengths.by_bucket(items, [5] * 10 + [300] * 10 + [100] * 3)
    assert out["<=16"] == {"n": 10, "score": 100.0}
    assert out["257-512"] == {"n": 10, "score": 0.0}
    assert out["65-128"] == {"n": 3, "score": None}  # too few items to score
    sts = stats.sts_items([0, 1, 2] * 4 + [0, 1, 2] * 4, [0.1, 0.2, 0.3] * 4 + [0.3, 0.2, 0.1] * 4)
    out = lengths.by_bucket(sts, [3] * 12 + [200] * 12)
    assert out["<=16"]["score"] == pytest.approx(100.0) and out["129-256"]["score"] == pytest.approx(-100.0)
    with pytest.raises(ValueError):
        lengths.by_bucket(items, [1, 2])


def test_item_lengths_follow_the_item_order_of_each_task_type():
    ret = RetrievalData(
        {"q:b": "x", "q:a": "y"}, {"d1": "one two", "d2": "one two three four"}, {"q:b": {"d1": 1}, "q:a": {"d2": 1}}
    )
    t = TaskData("r", "retrieval", "", False, ret, {})
    assert lengths.item_lengths(t) == [4, 2]  # queries in sorted id order, as stats.retrieval_items
    sts = STSData(["a b", "a b c d e"], [(0, 1, 1.0)])
    assert lengths.item_lengths(TaskData("s", "sts", "", False, sts, {})) == [5]
    cls = ClassificationData(["x"], ["t"], ["x"], ["one", "one two"], ["x", "x"])
    assert lengths.item_lengths(TaskData("c", "classification", "", False, cls, {})) == [1, 2]


def test_length_report_table_and_plot(tmp_path):
    sts = STSData([f"w{i}" for i in range(24)], [(i, i + 12, float(i % 3)) for i in range(12)])
    task = TaskData("word", "sts", "", False, sts, {})
    pred = [0.1, 0.5, 0.9] * 4
    result = {
        "models": [
            {"name": m, "tasks": {"word": {"scores": {"items": stats.sts_items(sts.scores, p)}}}}
            for m, p in (("good", pred), ("bad", pred[::-1]))
        ]
    }
    rep = lengths.length_report(result, {"word": task})
    assert rep["good"]["word"]["<=16"]["score"] == pytest.approx(100.0)
    table = lengths.length_table(rep)
    assert "| word | good | 100.0 (12) |" in table
    from dec2vec.evaluation.plots import plot_by_length

    png = plot_by_length(rep, tmp_path / "len.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


# ------------------------------------------------------------------------------------------ news tasks


def _body(tag: str, sentences: int, words: int = 12) -> str:
    return " ".join(
        f"{tag} sentence {i} " + " ".join(f"w{tag}{i}x{j}" for j in range(words - 3)) + "." for i in range(sentences)
    )


def test_windows_are_whole_sentences_within_the_cap():
    text = _body("a", 40)
    ws = passages.windows(text, 50, 100)
    assert ws and all(50 <= lengths.proxy_tokens(w) <= 100 for w in ws)
    assert " ".join(ws) in text or text.startswith(ws[0])
    assert passages.windows("x " * 500 + ".", 0, 100) == []  # a run-on "sentence" longer than the cap


def test_news_passage_retrieval_pairs_a_standfirst_with_its_own_lead():
    arts = [
        Article(str(i), f"T{i}", _body(f"a{i}", 40), subtitle=f"What happened to story number {i} today", link="")
        for i in range(6)
    ]
    own = _body("z", 40)
    arts.append(Article("99", "T", own, subtitle=own.split(".")[0], link=""))  # its standfirst opens its own lead
    full, quick, st = passages.news_passage_retrieval(arts, 0)
    assert "q:99" not in full.queries and len(full.queries) == 6
    for q, rel in full.qrels.items():
        doc = next(iter(rel))
        assert doc == f"np:{q[2:]}"
        lo, hi = passages.length_class("news-passage-retrieval", q[2:], passages.PASSAGE_CLASSES, 0)
        assert lo <= lengths.proxy_tokens(full.corpus[doc]) <= hi  # the article's own length class
    assert set(quick.corpus) <= set(full.corpus)


def test_news_paragraph_sts_grades_same_article_topic_and_other():
    links = [
        "https://tass.com/politics/1",
        "https://abcnews.go.com/Politics/x",
        "https://tass.com/sport/2",
        "https://bbc.co.uk/sport/3",
        "https://cnn.com/2017/x",
    ]
    arts = [Article(str(i), "t", _body(f"b{i}", 60), link=links[i % 5]) for i in range(20)]
    assert passages.topic_of(links[1]) == "politics" and passages.topic_of(links[4]) is None
    full, _, st = passages.news_paragraph_sts(arts, 0)
    assert st["articles_with_topic_and_two_windows"] == 16
    n = len(full.pairs) // 3  # articles with same- and other-topic partners in their length class
    assert n >= 1 and sorted(s for _, _, s in full.pairs) == [0.0] * n + [1.0] * n + [2.0] * n
    for i, j, s in full.pairs:
        a, b = full.texts[i].split()[0], full.texts[j].split()[0]  # the article tag starts every sentence
        topic = {f"b{k}": passages.topic_of(links[k % 5]) for k in range(20)}
        same_topic = topic[a] == topic[b]
        assert (s == 2.0) == (a == b) and (s == 1.0) == (a != b and same_topic)


# ------------------------------------------------------------------------------------------ words

DATA = [
    "00000001 03 n 01 entity 0 000 | anything",
    "00000002 06 n 02 car 0 automobile 0 001 @ 00000005 n 0000 | a motor vehicle",
    "00000003 06 n 01 truck 0 001 @ 00000005 n 0000 | a big motor vehicle",
    "00000004 06 n 01 hammer 0 001 @ 00000006 n 0000 | a tool",
    "00000007 05 n 01 dog 0 001 @ 00000008 n 0000 | an animal",
    "00000009 05 n 01 cat 0 001 @ 00000008 n 0000 | an animal too",
]


def _taxonomy() -> wordsim.Taxonomy:
    nodes = {n.offset: n for n in (parse_node(line) for line in DATA) if n is not None}
    first = {w: (n.offset, 5) for n in nodes.values() for w in n.lemmas}
    return wordsim.Taxonomy("n", nodes, first)


def test_parse_node_and_first_senses(tmp_path):
    n = parse_node(DATA[1])
    assert n == Node("00000002", "n", 6, ("car", "automobile"), ("00000005",))
    idx = tmp_path / "index.noun"
    idx.write_text("  1 licence line\ncar n 2 2 @ ~ 2 1 00000002 00000099  \n", encoding="utf-8")
    assert first_senses(idx) == {"car": ("00000002", 1)}


def test_word_pairs_are_graded_by_the_taxonomy_and_skip_reserved_pairs():
    tax = _taxonomy()
    g = {frozenset((a, b)): s for a, b, s in wordsim.graded_word_pairs(tax, 5, set(), 0, "t")}
    assert g[frozenset(("car", "automobile"))] == 3
    assert g[frozenset(("dog", "cat"))] == 2 and g.get(frozenset(("car", "truck")), 2) == 2
    assert all(s == 1 for k, s in g.items() if k in ({"car", "hammer"}, {"truck", "hammer"}))
    assert all(
        s == 0
        for k, s in g.items()
        if len(k & {"dog", "cat"}) == 1 and len(k & {"car", "hammer", "truck", "automobile"}) == 1
    )
    kept = wordsim.graded_word_pairs(tax, 5, {reserved.pair_key("cat", "dog")}, 0, "t")
    assert all({a, b} != {"cat", "dog"} for a, b, _ in kept)


# ------------------------------------------------------------------------------------------ reserved


def test_reserved_pairs_come_from_gensim_and_leave_training_records():
    pairs = reserved.reserved_pairs()
    assert reserved.pair_key("tiger", "cat") in pairs  # WordSim-353
    assert reserved.pair_key("old", "new") in pairs  # SimLex-999
    f = LeakageFilter()
    f.add_pairs(pairs)
    assert f.leaks(Record.of({"query": "Tiger", "positive": "cat."}, "g")) == "pair"
    assert f.leaks(Record.of({"query": "tiger", "positive": "a large feline of forests in Asia"}, "g")) is None
    kept, dropped = f.apply([Record.of({"query": "old", "positive": "New"}, "g")])
    assert kept == [] and dropped["pair"] == 1


def test_no_source_reads_a_reserved_file():
    from dec2vec.corpora import leakage

    files = [f for fs in TASK_FILES.values() for f in fs] + [f for s in leakage.EVAL_SOURCES for f in s.files]
    assert files and not [f for f in files if reserved.is_reserved_file(f)]
    assert reserved.is_reserved_file("test/test_data/wordsim353.tsv") and reserved.is_reserved_file("SimLex-999.txt")
