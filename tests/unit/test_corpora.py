"""The training-corpus builders on small inputs written here in the real formats (no network, seconds)."""

from __future__ import annotations

import bz2
import io
import json
import lzma
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from dec2vec.cli import main
from dec2vec.corpora import build as build_mod
from dec2vec.corpora import fetch, records
from dec2vec.corpora.bible import align, clean_osis, to_records
from dec2vec.corpora.fetch import Source, extract_deb, fetch_debian, locate_pypi, upstream_licence
from dec2vec.corpora.leakage import EvalIndex, EvalSource, LeakageFilter
from dec2vec.corpora.plaintext import austen_chunks, iter_pages, paragraphs, strip_wikitext
from dec2vec.corpora.records import Record, dedupe, in_valid, shuffled, split, write_jsonl
from dec2vec.corpora.text import chunk_words, normalise, split_sentences
from dec2vec.corpora.wordnet import gloss_example, parse_line, read_synsets, word_gloss
from dec2vec.errors import InputError, SourceError

# ------------------------------------------------------------------------------------------- WordNet

WORDNET = "".join(  # real data-file lines (which end in two spaces), cut here only to fit the line length
    line + "  \n"
    for line in (
        "  1 This software and database is being provided to you, the LICENSEE, by",
        "  2 Princeton University under the following license.",
        "00002684 03 n 02 object 0 physical_object 0 039 @ 00001930 n 0000 + 00532607 v 0105 | a tangible and "
        'visible entity; an entity that can cast a shadow; "it was full of rackets, balls and other objects"',
        "00003553 03 n 02 whole 0 unit 0 015 @ 00002684 n 0000 ~ 00003993 n 0000 | an assemblage of parts that is "
        'regarded as a single entity; "how big is that part compared to the whole?"; "the team is a unit"',
        "00001740 00 a 01 able(p) 0 005 = 05207437 n 0000 | (usually followed by `to') having the necessary means "
        'or skill to do something; "able to swim"; "she was able to program her computer"',
        '00064504 04 n 01 relief 0 001 @ 00063652 n 0000 | the act of relieving; "he asked for relief" - Shakespeare; '
        '"relief came at last"',
    )
)


def test_wordnet_line_format():
    assert parse_line("  1 This software and database is being provided  \n") is None
    s = parse_line(WORDNET.splitlines()[2])
    assert s.offset == "00002684" and s.pos == "n"
    assert s.lemmas == ("object", "physical object")  # underscores become spaces
    assert s.definition == "a tangible and visible entity; an entity that can cast a shadow"
    assert s.examples == ("it was full of rackets, balls and other objects",)
    adj = parse_line(WORDNET.splitlines()[4])
    assert adj.lemmas == ("able",)  # the (p) position marker is not part of the word
    assert adj.definition.startswith("(usually followed by `to') having")
    quoted = parse_line(WORDNET.splitlines()[5])
    assert quoted.definition == "the act of relieving"  # the "- Shakespeare" attribution is dropped
    assert quoted.examples == ("he asked for relief", "relief came at last")


def test_wordnet_pairs(tmp_path):
    (tmp_path / "data.noun").write_text(WORDNET)
    synsets = list(read_synsets([tmp_path / "data.noun"]))
    assert len(synsets) == 4
    wg = word_gloss(synsets)
    assert [r.data["query"] for r in wg] == ["object", "whole", "able", "relief"]
    assert wg[1].data == {"query": "whole", "positive": "an assemblage of parts that is regarded as a single entity"}
    ge = gloss_example(synsets)
    assert len(ge) == 7
    assert ge[1].data == {
        "query": "an assemblage of parts that is regarded as a single entity",
        "positive": "how big is that part compared to the whole?",
    }
    # both WordNet sets group by definition, so a sense lands in the same split in both
    assert wg[1].group == ge[1].group == ge[2].group


# --------------------------------------------------------------------------------------------- Bible

KJV_RAW = (
    '<div type="x-milestone" subType="x-preverse" sID="pv1"/>In the <w lemma="strong:H7225">beginning</w> '
    '<w lemma="strong:H0430">God</w> created the \\nd heaven and the earth.<note placement="foot">'
    '<reference type="annotateRef">1.1 </reference>heaven: Heb. heavens</note> '
)
WEB_RAW = (
    '<w lemma="strong:H0430">In</w> the beginning, <w lemma="strong:H0430">God</w><note placement="foot">'
    '<reference type="annotateRef">1:1 </reference>The Hebrew word rendered “God” is Elohim.</note>'
    "<w>created</w> the heavens and the earth. "
)


def test_clean_osis():
    assert clean_osis(KJV_RAW) == "In the beginning God created the heaven and the earth."
    # the footnote stood where a space was: the words must not run together
    assert clean_osis(WEB_RAW) == "In the beginning, God created the heavens and the earth."
    heading = '<title type="x-heading">Section heading</title> ¶ <divineName>LORD</divineName> speaks .'
    assert clean_osis(heading) == "LORD speaks."
    psalm = '<title canonical="true" type="psalm">A Psalm of David.</title> <l level="1"/>Praise him.'
    assert clean_osis(psalm) == "A Psalm of David. Praise him."
    last = (
        'Amen. <chapter eID="Rev.22"/> <div canonical="true" eID="gen1" osisID="Rev" type="book"/> '
        '<div sID="gen2" type="glossary"/> <title>World English Bible Glossary</title> Abba is a word.'
    )
    assert clean_osis(last) == "Amen."  # WEB's glossary, appended to the last verse, is cut off


def test_align_pairs_negatives_and_ratio():
    kjv = {
        ("Gen", 1, 1): "In the beginning God created the heaven and the earth.",
        ("Gen", 1, 2): "And the earth was without form, and void.",
        ("Gen", 1, 3): "And God said, Let there be light: and there was light.",
        ("Gen", 2, 1): "Thus the heavens and the earth were finished.",
        ("Gen", 2, 2): "And on the seventh day God ended his work.",
        ("Gen", 2, 3): "And God blessed the seventh day.",
    }
    web = {
        ("Gen", 1, 1): "In the beginning, God created the heavens and the earth.",
        ("Gen", 1, 2): "The earth was formless and empty.",
        ("Gen", 1, 3): "God said, “Let there be light,” and there was light.",
        ("Gen", 2, 1): "",  # left out by one translation
        ("Gen", 2, 2): "On the seventh day God finished his work which he had done; and he rested on the seventh day "
        "from all his work which he had done, and everything else besides, at great length.",  # ratio > 2
        ("Gen", 2, 3): "God blessed the seventh day.",
        ("Tob", 1, 1): "A deuterocanonical verse with no KJV counterpart.",
    }
    out = align(kjv, web)
    assert out.dropped_empty == 1 and out.dropped_length_ratio == 1
    refs = [p[0] for p in out.pairs]
    assert refs == [("Gen", 1, 1), ("Gen", 1, 2), ("Gen", 1, 3), ("Gen", 2, 3)]
    by_ref = {p[0]: p for p in out.pairs}
    assert by_ref[("Gen", 1, 1)][3] == [web[("Gen", 1, 2)]]  # only the next verse: there is no 1:0
    assert by_ref[("Gen", 1, 2)][3] == [web[("Gen", 1, 1)], web[("Gen", 1, 3)]]
    assert by_ref[("Gen", 2, 3)][3] == [web[("Gen", 2, 2)]]  # the empty 2:1 is no negative; 2:4 does not exist
    recs = to_records(out)
    assert recs[0].data == {
        "query": kjv[("Gen", 1, 1)],
        "positive": web[("Gen", 1, 1)],
        "negatives": [web[("Gen", 1, 2)]],
    }
    assert recs[0].group == recs[1].group == "Gen 1"  # a chapter stays in one split
    assert len(align(kjv, web, min_ratio=0.0, max_ratio=100.0).pairs) == 5


def test_align_drops_negative_equal_to_positive():
    kjv = {("Ps", 136, 1): "O give thanks.", ("Ps", 136, 2): "O give thanks!"}
    web = {("Ps", 136, 1): "Give thanks.", ("Ps", 136, 2): "Give thanks."}
    assert [p[3] for p in align(kjv, web).pairs] == [[], []]


# ---------------------------------------------------------------------------------------- plain text


def test_sentences_and_chunks():
    assert split_sentences('He said "Go." Then left! Really? yes\nnew line') == [
        'He said "Go."',
        "Then left!",
        "Really?",
        "yes",
        "new line",
    ]
    text = " ".join(f"Sentence number {i} has six words." for i in range(10))  # 60 words
    chunks = chunk_words(text, 20)
    assert all(len(c.split()) <= 20 for c in chunks) and " ".join(chunks) == text
    assert chunk_words("word " * 45, 20) == ["word " * 19 + "word"] * 2 + ["word " * 4 + "word"]
    assert normalise("“Hello,”  WORLD—again!") == "hello world again"


AUSTEN = [
    "PRIDE AND PREJUDICE",
    "",
    "By Jane Austen",
    "",
    "Chapter 1",
    "",
    "It is a truth universally acknowledged, that a single man in possession",
    "of a good fortune, must be in want of a wife.",
    "",
    '"_You_ want to tell me, and I have no objection to hearing it."',
    "",
    '"Bingley."',
    "",
    "CHAPTER II.",
    None,  # R's NA
    "THE END",
]


def test_austen_paragraphs():
    assert paragraphs(["a", "b", "", "", "c", None, "d"]) == ["a b", "c", "d"]
    assert austen_chunks(AUSTEN) == [
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, "
        "must be in want of a wife.",
        '"You want to tell me, and I have no objection to hearing it."',  # italics marks removed
    ]  # title, author line, headings, "THE END" and the one-word reply are gone


def test_austen_reads_r_lazyload_db(tmp_path):
    rdata = pytest.importorskip("rdata")
    if not hasattr(rdata, "write_rds"):
        pytest.skip("this rdata cannot write RDS files")
    import struct
    import zlib

    import numpy as np

    from dec2vec.corpora.plaintext import read_lazyload_db

    rdata.write_rds(tmp_path / "obj.rds", np.array(AUSTEN[:8], dtype=object), compression=None)
    serialised = (tmp_path / "obj.rds").read_bytes()
    blob = struct.pack(">I", len(serialised)) + zlib.compress(serialised)  # how R stores a lazy-load object
    (tmp_path / "Rdata.rdb").write_bytes(b"pad" + blob)
    index = {"variables": {"pp": np.array([3, len(blob)], dtype=np.int32)}, "references": {}, "compressed": True}
    rdata.write_rds(tmp_path / "Rdata.rdx", index)
    novels = read_lazyload_db(tmp_path / "Rdata.rdx", tmp_path / "Rdata.rdb")
    assert list(novels) == ["pp"] and [str(x) for x in novels["pp"]] == AUSTEN[:8]


WIKI_XML = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">
  <siteinfo><sitename>Wikipedia</sitename></siteinfo>
  <page><title>AccessibleComputing</title><ns>0</ns><id>10</id><redirect title="Computer accessibility" />
    <revision><id>1</id><text xml:space="preserve">#REDIRECT [[Computer accessibility]]</text></revision></page>
  <page><title>Wikipedia:About</title><ns>4</ns><id>11</id>
    <revision><id>2</id><text>A project page that is not an article at all really.</text></revision></page>
  <page><title>Aardvark</title><ns>0</ns><id>12</id>
    <revision><id>3</id><text xml:space="preserve">{{Infobox animal|name={{lang|en|Aardvark}}|image=x.jpg}}
[[File:Aardvark.jpg|thumb|An [[aardvark]] at a [[zoo|zoo in Europe]]]]
The '''aardvark''' ({{IPA|ˈɑːrd.vɑːrk}}) is a medium-sized, burrowing, nocturnal [[mammal]] native to \
[[Africa]].&lt;ref name="a"&gt;Smith 2001, p. 3.&lt;/ref&gt; It is the only living species of the order \
[[Tubulidentata]].&lt;!-- a comment --&gt;

== Description ==
{| class="wikitable"
| cell one || cell two
|}
* a list item that is long enough to count as a paragraph otherwise
Aardvarks have a long snout and feed almost exclusively on ants and termites, see [http://example.org the site].
Too short here.

== References ==
Smith, John. A book about aardvarks that is cited in this article, 2001.
[[Category:Mammals]]
[[de:Erdferkel]]</text></revision></page>
</mediawiki>
"""


def test_wiki_pages_and_markup(tmp_path):
    path = tmp_path / "enwiki-test-pages-articles-shortened.bz2"
    path.write_bytes(bz2.compress(WIKI_XML.encode("utf-8")))
    pages = list(iter_pages(path))
    assert [t for t, _ in pages] == ["Aardvark"]  # redirects and other namespaces are not articles
    assert strip_wikitext(pages[0][1]) == [
        "The aardvark is a medium-sized, burrowing, nocturnal mammal native to Africa. "
        "It is the only living species of the order Tubulidentata.",
        "Aardvarks have a long snout and feed almost exclusively on ants and termites, see the site.",
    ]


# ------------------------------------------------------------------------------------------- leakage


def test_leakage_filter_sentences_and_titles():
    evals = [
        "The committee approved the new budget for the city schools on Monday. Short one.",
        "Stocks fell.",
    ]
    f = LeakageFilter.from_texts(evals, titles=["Aardvark", "New_York City"])
    leak = Record.of({"text": "Intro. THE COMMITTEE approved the new budget, for the city schools on Monday!"}, "g")
    near = Record.of({"text": "The committee approved the new budget for the town schools on Monday."}, "g")
    short = Record.of({"query": "Short one.", "positive": "Stocks rose.", "negatives": []}, "g")
    whole = Record.of({"query": "a word", "positive": "Stocks, fell!", "negatives": []}, "g")
    in_negs = Record.of(
        {
            "query": "q",
            "positive": "p",
            "negatives": ["the committee approved the new budget for the city schools on monday"],
        },
        "g",
    )
    titled = Record.of({"text": "Anything at all about this animal goes here."}, "g", title="aardvark")
    titled2 = Record.of({"text": "Anything at all about this city goes here."}, "g", title="New York City")
    assert f.leaks(leak) == "sentence"  # case, punctuation and spacing do not hide a copied sentence
    assert f.leaks(near) is None
    assert f.leaks(short) is None  # sentences under 8 words inside a longer evaluation text never count
    assert f.leaks(whole) == "text"  # ... but a training text equal to a whole evaluation text does
    assert f.leaks(in_negs) == "sentence"
    assert f.leaks(titled) == "title" and f.leaks(titled2) == "title"
    kept, dropped = f.apply([leak, near, short, whole, titled, titled2])
    assert kept == [near, short]
    assert dropped == {"title": 2, "text": 1, "sentence": 1, "pair": 0, "pages": 2}


def test_eval_index_reports_missing_packages(caplog):
    src = EvalSource(
        "nowhere", "dec2vec_no_such_module", "no-such-dist", "no-such-dist==1.0", ("x.json",), lambda p: []
    )
    ix = EvalIndex.locate([src], pair_sources=())
    assert ix.checked == [] and ix.missing == [
        {"name": "nowhere", "install": "pip install --no-deps no-such-dist==1.0"}
    ]
    assert "nowhere" in caplog.text
    assert ix.filter().keys == set()


# ------------------------------------------------------------------------------------------- records


def test_split_is_by_group_and_stable():
    groups = [f"group {i}" for i in range(20000)]
    frac = sum(in_valid(g) for g in groups) / len(groups)
    assert 0.017 < frac < 0.023
    recs = [Record.of({"text": f"t{i}"}, group=f"chapter {i // 5}") for i in range(2000)]
    train, valid = split(recs)
    assert len(train) + len(valid) == 2000 and valid
    valid_groups = {r.group for r in valid}
    assert not valid_groups & {r.group for r in train}  # a group is never split
    assert split(list(reversed(recs)))[1] == list(reversed(valid))  # membership does not depend on order


def test_shuffle_and_dedupe():
    recs = [Record.of({"text": f"t{i}"}, group=str(i)) for i in range(50)]
    a, b, c = shuffled(recs, 0, "f"), shuffled(recs, 0, "f"), shuffled(recs, 1, "f")
    assert a == b and a != c and sorted(r.data["text"] for r in a) == sorted(r.data["text"] for r in recs)
    kept, dropped = dedupe(recs + recs[:3])
    assert kept == recs and dropped == 3


def test_write_jsonl_is_atomic(tmp_path):
    dest = tmp_path / "x.jsonl"
    meta = write_jsonl(dest, [Record.of({"text": "é"}, "g")])
    assert dest.read_text(encoding="utf-8") == '{"text": "é"}\n'
    assert meta["records"] == 1 and len(meta["sha256"]) == 64

    def broken():
        yield Record.of({"text": "new"}, "g")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_jsonl(dest, broken())
    assert dest.read_text(encoding="utf-8") == '{"text": "é"}\n'  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]  # and no temporary file is left


# --------------------------------------------------------------------------------------------- fetch


def _ar_member(name: str, data: bytes) -> bytes:
    header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode()
    return header + data + (b"\n" if len(data) % 2 else b"")


def _tar_xz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_deb(path: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal but real Debian binary package (what dpkg-deb -x and -f accept)."""
    control = f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"
    body = b"!<arch>\n"
    body += _ar_member("debian-binary", b"2.0\n")
    body += _ar_member("control.tar.xz", _tar_xz({"control": control.encode()}))
    body += _ar_member("data.tar.xz", _tar_xz(files))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


COPYRIGHT = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: thing

Files: *
Copyright: someone
License: public-domain
 It is free.

Files: debian/*
License: GPL-2+
"""


def test_upstream_licence():
    assert upstream_licence(COPYRIGHT.decode()) == "public-domain"
    assert upstream_licence("no stanzas here") is None


def test_fetch_debian_uses_cached_deb_and_reuses_unpacked(tmp_path, monkeypatch):
    files = {"usr/share/doc/fake-pkg/copyright": COPYRIGHT, "usr/share/fake/data.txt": b"hello\n"}
    make_deb(tmp_path / "debs" / "fake-pkg_1%3a2.0-3_all.deb", "fake-pkg", "1:2.0-3", files)
    monkeypatch.setattr(fetch.shutil, "which", lambda cmd: None)  # no apt-get, no dpkg-deb: the pure-Python path
    src = fetch_debian("fake-pkg", tmp_path)
    assert src.version == "1:2.0-3"  # from the file name, %3a being the epoch colon
    assert src.upstream_licence == "public-domain" and src.kind == "debian" and len(src.origin_sha256) == 64
    assert src.path("usr/share/fake/data.txt").read_text() == "hello\n"
    assert set(src.files) == set(files)  # every file read is hashed
    with pytest.raises(SourceError, match="missing"):
        src.path("usr/share/fake/nope.txt")

    def no_unpack(*a, **k):
        raise AssertionError("unpacked again")

    monkeypatch.setattr(fetch, "_unpack", no_unpack)
    assert fetch_debian("fake-pkg", tmp_path).identity() == src.identity()  # the unpacked folder is reused


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_fetch_debian_with_dpkg_deb(tmp_path):
    make_deb(tmp_path / "debs" / "fake-pkg_0.1-1_all.deb", "fake-pkg", "0.1-1", {"usr/x.txt": b"x"})
    src = fetch_debian("fake-pkg", tmp_path)
    assert src.version == "0.1-1" and src.path("usr/x.txt").read_bytes() == b"x"


def test_extract_deb_rejects_other_files(tmp_path):
    (tmp_path / "bad.deb").write_bytes(b"not an archive")
    with pytest.raises(SourceError, match="not a Debian package"):
        extract_deb(tmp_path / "bad.deb", tmp_path / "out")


def test_missing_apt_get_and_download_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch.shutil, "which", lambda cmd: None)
    with pytest.raises(SourceError, match=r"apt-get not found.*packages\.debian\.org/bookworm/wordnet-base"):
        fetch_debian("wordnet-base", tmp_path)

    class Done:
        def __init__(self, rc: int, err: str = "") -> None:
            self.returncode, self.stderr, self.stdout = rc, err, ""

    calls: list[list[str]] = []

    def fake_run(cmd, cwd=None):
        calls.append(list(cmd))
        if cmd[1] == "update":
            return Done(100, "E: Could not open lock file - open (13: Permission denied)")
        return Done(100, "E: Unable to locate package wordnet-base")

    monkeypatch.setattr(fetch.shutil, "which", lambda cmd: f"/usr/bin/{cmd}")
    monkeypatch.setattr(fetch, "_run", fake_run)
    with pytest.raises(SourceError, match=r"apt-get update.*failed too.*sudo apt-get update"):
        fetch_debian("wordnet-base", tmp_path)
    assert [c[1] for c in calls] == ["download", "update"]  # update is tried only because lists were missing


def test_locate_pypi_missing_package_says_how_to_install():
    with pytest.raises(SourceError, match=r"pip install --no-deps gensim==4\.4\.0"):
        locate_pypi("dec2vec_no_such_module", "gensim", "gensim==4.4.0", ["x"])


# --------------------------------------------------------------------------------------------- build


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """One fake source and two fake corpora in place of the real ones; evaluation = one known sentence."""
    root = tmp_path / "fake-src"
    root.mkdir()
    (root / "lines.txt").write_text(
        "\n".join(f"line {i} of the fake corpus has several words in it" for i in range(300))
        + "\nthis exact sentence appears in the evaluation data as well\n",
        encoding="utf-8",
    )

    def get(cache: Path) -> Source:
        src = Source("fake", "pypi", "1.0", root, "public domain", "fake==1.0")
        src.pin("lines.txt")  # as locate_pypi does: the file's hash decides whether outputs are current
        return src

    def make_text(s):
        lines = s["fake"].path("lines.txt").read_text(encoding="utf-8").splitlines()
        return [Record.of({"text": t}, group=t) for t in lines], {"lines": len(lines)}

    def make_pairs(s):
        lines = s["fake"].path("lines.txt").read_text(encoding="utf-8").splitlines()
        return [Record.of({"query": t, "positive": t.upper()}, group=t) for t in lines[:50]], {}

    corpora = (
        build_mod.Corpus("fake-text", ("text",), ("fake",), make_text, "fake text"),
        build_mod.Corpus("fake-pairs", ("query", "positive"), ("fake",), make_pairs, "fake pairs"),
    )
    monkeypatch.setattr(build_mod, "SOURCES", {"fake": get})
    monkeypatch.setattr(build_mod, "CORPORA", corpora)
    evals = EvalSource(
        "fake-eval", "x", "x", "x==1", (), lambda p: ["This exact sentence appears in the evaluation data as well."]
    )
    index = EvalIndex(
        located=[(evals, {})], checked=[{"name": "fake-eval", "package": "x", "version": "1", "files": {}}], missing=[]
    )
    monkeypatch.setattr(build_mod.EvalIndex, "locate", classmethod(lambda cls, sources=(), pair_sources=(): index))
    return root


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_build_writes_files_manifest_and_readme(tmp_path, fake_registry):
    out = tmp_path / "data"
    m = build_mod.build(out, seed=3, cache=tmp_path / "cache")
    assert m["run"]["fake-text"]["status"] == "built"
    c = m["corpora"]["fake-text"]
    assert c["counts"]["parsed"] == 301 and c["counts"]["dropped_leakage_text"] == 1  # the whole eval sentence
    assert c["counts"]["train"] + c["counts"]["valid"] == 300 and c["counts"]["valid"] > 0
    train = read_jsonl(out / "fake-text.train.jsonl")
    assert len(train) == c["counts"]["train"] and set(train[0]) == {"text"}
    texts = [r["text"] for r in train]
    assert texts != sorted(texts, key=lambda t: int(t.split()[1]))  # shuffled
    assert read_jsonl(out / "fake-pairs.valid.jsonl") or read_jsonl(out / "fake-pairs.train.jsonl")
    on_disk = json.loads((out / "MANIFEST.json").read_text())
    assert "run" not in on_disk and on_disk["seed"] == 3
    assert on_disk["sources"]["fake"]["files"]["lines.txt"] == fetch.sha256_file(fake_registry / "lines.txt")
    for name, meta in c["files"].items():
        assert meta["sha256"] == fetch.sha256_file(out / name)
    assert on_disk["leakage"]["checked"][0]["name"] == "fake-eval"
    assert "fake-text" in (out / "README.md").read_text()


def test_build_is_idempotent_and_rebuilds_on_change(tmp_path, fake_registry):
    out = tmp_path / "data"
    kw = {"cache": tmp_path / "cache"}
    build_mod.build(out, **kw)
    target = out / "fake-text.train.jsonl"
    before = target.read_bytes()
    os.utime(target, (1, 1))
    again = build_mod.build(out, **kw)
    assert {r["status"] for r in again["run"].values()} == {"kept"}
    assert target.stat().st_mtime == 1  # not rewritten
    assert build_mod.build(out, force=True, **kw)["run"]["fake-text"]["status"] == "built"
    assert target.read_bytes() == before  # same inputs and seed: same bytes
    reseeded = build_mod.build(out, seed=1, **kw)
    assert reseeded["run"]["fake-text"]["status"] == "built" and target.read_bytes() != before
    target.write_text("tampered\n")
    assert build_mod.build(out, seed=1, **kw)["run"]["fake-text"]["status"] == "built"
    (fake_registry / "lines.txt").write_text("a new source file with enough words in it\n")
    assert build_mod.build(out, seed=1, **kw)["run"]["fake-pairs"]["status"] == "built"


def test_build_only_keeps_other_entries(tmp_path, fake_registry):
    out = tmp_path / "data"
    build_mod.build(out, cache=tmp_path / "cache")
    m = build_mod.build(out, sources=["fake-pairs"], force=True, cache=tmp_path / "cache")
    assert list(m["run"]) == ["fake-pairs"] and set(m["corpora"]) == {"fake-pairs", "fake-text"}
    assert [c.name for c in build_mod.select(["fake"])] == ["fake-text", "fake-pairs"]  # a family prefix
    with pytest.raises(InputError, match="unknown corpus 'nope'"):
        build_mod.build(out, sources=["nope"], cache=tmp_path / "cache")


def test_build_failure_keeps_what_was_done(tmp_path, fake_registry, monkeypatch):
    def broken(s):
        raise SourceError("the source went away")

    failing = build_mod.Corpus("fake-broken", ("text",), ("fake",), broken, "fails")
    monkeypatch.setattr(build_mod, "CORPORA", (*build_mod.CORPORA, failing))
    out = tmp_path / "data"
    with pytest.raises(SourceError, match="went away"):
        build_mod.build(out, cache=tmp_path / "cache")
    assert set(build_mod.read_manifest(out)["corpora"]) == {"fake-text", "fake-pairs"}  # recorded as they finished
    again = build_mod.build(out, sources=["fake-text", "fake-pairs"], cache=tmp_path / "cache")
    assert {r["status"] for r in again["run"].values()} == {"kept"}


def test_cli_data_build(tmp_path, fake_registry, monkeypatch, capsys):
    monkeypatch.setenv("DEC2VEC_HOME", str(tmp_path / "home"))
    assert main(["data", "build", "--only", "fake-text", "--seed", "2"]) == 0
    out, err = capsys.readouterr()
    assert "fake-text.train.jsonl" in out and "built" in out
    assert "fake-text: building" in err
    assert (tmp_path / "home" / "data" / "MANIFEST.json").is_file()  # the default folder
    assert main(["data", "build", "--out", str(tmp_path / "d"), "--only", "nope"]) == 2
    assert "unknown corpus 'nope'" in capsys.readouterr().err


def test_registry_names_every_output():
    assert [c.name for c in build_mod.CORPORA] == [
        "wordnet-word-gloss",
        "wordnet-gloss-example",
        "bible-kjv-web",
        "austen",
        "wiki-gensim",
        "gcide-word-definition",
        "gcide-word-quotation",
        "glossary-term-definition",
        "manpages-name-description",
        "bible-asv-kjv",
        "bible-asv-web",
        "bible-mhcc-commentary",
        "chitchat-turns",
        "shakespeare-turns",
        "chatterbot-qa",
        "manpages-section-passage",
        "bible-outline-passage",
        "fortunes",
        "text-mix",
    ]
    assert {s for c in build_mod.CORPORA for s in c.sources} == set(build_mod.SOURCES)
    assert [c.name for c in build_mod.select(["wordnet"])] == ["wordnet-word-gloss", "wordnet-gloss-example"]
    assert records.VALID_FRACTION == 0.02


def test_lzma_is_available():  # the .deb fallback and R's xz-compressed databases need it
    assert lzma.decompress(lzma.compress(b"x")) == b"x"
