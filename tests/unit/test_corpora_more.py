"""The new corpus parsers (dictd, GCIDE, dialogue, ASV, MHCC, man pages, fortunes, text-mix) on tiny inputs."""

from __future__ import annotations

import gzip
import json
import sqlite3
import struct
import zlib
from pathlib import Path

from dec2vec.corpora import build as build_mod
from dec2vec.corpora.bible import align, read_asv
from dec2vec.corpora.commentary import passage_pairs, read_blocks, sections
from dec2vec.corpora.dialogue import chitchat_turns, play_speeches, turn_pairs
from dec2vec.corpora.dictd import (
    b64_number,
    devil_definition,
    glossary_definition,
    parse_gcide,
    read_dictd,
)
from dec2vec.corpora.manpages import fortune_items, man_pair
from dec2vec.corpora.mix import text_mix
from dec2vec.corpora.records import Record, in_valid

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _b64(n: int) -> str:
    out = ""
    while True:
        out = _B64[n % 64] + out
        n //= 64
        if not n:
            return out


def write_dictd(tmp: Path, articles: dict[str, str], aliases: dict[str, str] | None = None) -> tuple[Path, Path]:
    """A dictd database (index + gzip'd dict) in the real layout; ``aliases`` point more words at an article."""
    data = b""
    where: dict[str, tuple[int, int]] = {}
    for word, text in articles.items():
        raw = text.encode("utf-8")
        where[word] = (len(data), len(raw))
        data += raw
    lines = [f"00-database-info\t{_b64(0)}\t{_b64(5)}"]
    for word, (o, n) in where.items():
        lines.append(f"{word}\t{_b64(o)}\t{_b64(n)}")
    for alias, target in (aliases or {}).items():
        o, n = where[target]
        lines.append(f"{alias}\t{_b64(o)}\t{_b64(n)}")
    (tmp / "x.index").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with gzip.open(tmp / "x.dict.dz", "wb") as f:
        f.write(data)
    return tmp / "x.index", tmp / "x.dict.dz"


GCIDE_RUN = """Run \\Run\\, n. [AS. rinnan. See {Race}.]
   1. The act of running; as, a long run.
      [1913 Webster]

            A canting, mawkish play . . . had an immense run.
                                                  --Macaulay.
      [1913 Webster]

   2. A small stream; a brook. [Obs.]
      [1913 Webster]

   Syn: course; stream.

   {Run steel}, malleable iron castings. --Raymond.
      [1913 Webster]
"""

GCIDE_VIRTU = """Virtu \\Vir*tu"\\ (?; 277), n. [It. virt[`u] virtue, excellence,
   from L. virtus. See {Virtue}.]
   A love of the fine arts; a taste for curiosities. --J.
   Spence.
   [1913 Webster]
"""


def test_dictd_base64_and_shared_articles(tmp_path):
    assert b64_number("A") == 0 and b64_number("B") == 1 and b64_number("BA") == 64 and b64_number("5I") == 57 * 64 + 8
    index, dz = write_dictd(tmp_path, {"Run": GCIDE_RUN, "Virtu": GCIDE_VIRTU}, aliases={"a piece of virtu": "Virtu"})
    articles = read_dictd(index, dz)
    assert [w for w, _ in articles] == ["Run", "Virtu"]  # the alias points at the same article: read once
    assert articles[1][1] == GCIDE_VIRTU


def test_gcide_definitions_quotations_and_subentries():
    e = parse_gcide(GCIDE_RUN)
    assert e.word == "Run"
    assert e.definitions == (
        ("Run", "The act of running; as, a long run."),
        ("Run", "A small stream; a brook."),  # [Obs.] label removed
        ("Run steel", "malleable iron castings."),  # sub-entry, attribution removed
    )
    assert e.quotations == ("A canting, mawkish play... had an immense run.",)
    v = parse_gcide(GCIDE_VIRTU)  # multi-line etymology with nested accent brackets, definition in the header
    assert v.word == "Virtu"
    assert v.definitions == (("Virtu", "A love of the fine arts; a taste for curiosities."),)


def test_glossaries():
    foldoc = "Chadless keypunch\n\n   <hardware> A {card punch} which cut little U-shapes.\n\n   (2000-11-22)\n"
    assert glossary_definition(foldoc) == ("Chadless keypunch", "A card punch which cut little U-shapes.")
    jargon = "blue wire\n n.\n\n    [IBM] Patch wires added to circuit boards. Compare {\n    purple wire}.\n"
    assert glossary_definition(jargon) == (
        "blue wire",
        "[IBM] Patch wires added to circuit boards. Compare purple wire.",
    )
    vera = "3DRAM\n       3 Dimensional Random Access Memory (RAM)\n       \n"
    assert glossary_definition(vera) == ("3DRAM", "3 Dimensional Random Access Memory (RAM)")
    devil = "CANNON, n.  An instrument employed in the rectification of national\nboundaries.\n"
    assert devil_definition(devil) == ("Cannon", "An instrument employed in the rectification of national boundaries.")
    assert glossary_definition("lonely\n") is None


def test_chitchat_and_turn_pairs():
    data = {
        "c1": {
            "messages": [
                [{"text": "Hello"}, {"text": "How are you?"}],
                [{"text": "Fine, thanks"}],
                [],
                [{"text": "Bye"}],
            ]
        }
    }
    ((cid, turns),) = list(chitchat_turns(data))
    assert turns == ["Hello How are you?", "Fine, thanks", "", "Bye"]
    pairs = turn_pairs(turns, group=cid)
    assert [r.data for r in pairs] == [{"query": "Hello How are you?", "positive": "Fine, thanks"}]  # no pair across ""
    assert pairs[0].group == "c1"


def test_play_speeches():
    md = (
        "# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_FRANCISCO at his post._\n\n"
        "**BERNARDO**  \nWho's there?\n\n**FRANCISCO**  \nNay, answer me:  \nstand, and unfold yourself.\n\n"
        "### SCENE II. A room.\n\n**KING**  \nThough yet of Hamlet _aside_ our dear brother's death\n"
    )
    scenes = play_speeches(md)
    assert scenes == [
        [("BERNARDO", "Who's there?"), ("FRANCISCO", "Nay, answer me: stand, and unfold yourself.")],
        [("KING", "Though yet of Hamlet aside our dear brother's death")],
    ]


def test_asv_read_and_align(tmp_path):
    db = tmp_path / "asv.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE books (id INTEGER PRIMARY KEY, sort_order INTEGER, canonical_name TEXT)")
    con.execute("CREATE TABLE verses (id INTEGER PRIMARY KEY, book_id INTEGER, chapter_id INTEGER, "
                "chapter_number INTEGER, verse_number INTEGER, text TEXT)")  # fmt: skip
    con.executemany("INSERT INTO books VALUES (?,?,?)", [(10, 2, "Exodus"), (11, 1, "Genesis")])
    con.executemany(
        "INSERT INTO verses VALUES (?,?,?,?,?,?)",
        [(1, 11, 1, 1, 1, "In the beginning God created the heavens and the earth."),
         (2, 11, 1, 1, 2, "And the earth was waste and void. [Selah"),
         (3, 10, 2, 1, 1, "Now these are the names.")],
    )  # fmt: skip
    con.commit()
    con.close()
    asv = read_asv(db, ["Gen", "Exod"])
    assert asv[("Gen", 1, 2)] == "And the earth was waste and void. Selah"
    assert asv[("Exod", 1, 1)] == "Now these are the names."  # by sort_order, not by id
    kjv = {
        ("Gen", 1, 1): "In the beginning God created the heaven and the earth.",
        ("Gen", 1, 2): "And the earth was without form.",
    }
    a = align(asv, kjv)
    assert [(r, q) for r, q, _, _ in a.pairs] == [
        (("Gen", 1, 1), asv[("Gen", 1, 1)]),
        (("Gen", 1, 2), asv[("Gen", 1, 2)]),
    ]
    assert a.pairs[0][3] == ["And the earth was without form."]


def test_mhcc_blocks_and_sections(tmp_path):
    osis = (
        '<chapter n="1" osisID="Gen.1" sID="Gen.1"/> <div type="introduction"/> Intro text.'
        '<hi type="bold">Verses 1-2</hi> <div type="x-p"/> God made all. '
        'See <reference osisRef="John.1.1">Joh 1:1</reference>.'
        '<hi type="bold">Verse 3</hi> Light came. <chapter eID="Gen.1"/>'
        '<chapter n="2" osisID="Gen.2" sID="Gen.2"/><hi type="bold">Verse 1</hi> Rest.'
    )
    blocks = [osis[:90].encode(), osis[90:].encode()]
    index, data = b"", b""
    for b in blocks:
        z = zlib.compress(b)
        index += struct.pack("<III", len(data), len(z), len(b))
        data += z
    (tmp_path / "ot.bzs").write_bytes(index)
    (tmp_path / "ot.bzz").write_bytes(data)
    text = read_blocks(tmp_path / "ot.bzs", tmp_path / "ot.bzz")
    assert text == osis
    secs = sections(text)
    assert [s[:4] for s in secs] == [("Gen", 1, 1, 2), ("Gen", 1, 3, 3), ("Gen", 2, 1, 1)]
    assert secs[0][4] == "God made all. See Joh 1:1."
    verses = {("Gen", 1, 1): "In the beginning.", ("Gen", 1, 2): "And the earth.", ("Gen", 1, 3): "Let there be light."}
    records, missing = passage_pairs(secs, verses)
    assert missing == 1  # Gen 2:1 is not in this tiny Bible
    assert records[0].data == {"query": "In the beginning. And the earth.", "positive": "God made all. See Joh 1:1."}
    assert records[0].group == "Gen 1"


MAN = r""".\" Copyright notice
.TH QSORT 3 2022-10-30 "Linux man-pages 6.03"
.SH NAME
qsort, qsort_r \- sort an array
.SH SYNOPSIS
.B #include <stdlib.h>
.SH DESCRIPTION
The
.BR qsort ()
function sorts an array with \fInmemb\fP elements \(em in place.
.PP
The second paragraph.
"""


def test_man_pair():
    assert man_pair(MAN) == (
        "qsort, qsort_r - sort an array",
        "The qsort() function sorts an array with nmemb elements — in place.",
    )
    assert man_pair(".so man3/qsort.3\n") is None


def test_fortune_items():
    assert fortune_items("A penny saved\nis a penny earned.\n%\n\n%\nSecond one.\n") == [
        "A penny saved is a penny earned.",
        "Second one.",
    ]


def test_text_mix_keeps_validation_texts_in_validation():
    valid_group = next(f"g{i}" for i in range(1000) if in_valid(f"g{i}"))
    train_group = next(f"g{i}" for i in range(1000) if not in_valid(f"g{i}"))
    shared = "this text is in both splits of the pair corpus"
    pairs = [
        Record.of({"query": "short", "positive": shared}, group=train_group),
        Record.of({"query": "a query long enough to be kept", "positive": shared}, group=valid_group),
    ]
    plain = [Record.of({"text": f"plain text number {i} of the corpus"}, group=f"p{i}") for i in range(5)]
    out, stats = text_mix([("pairs", lambda: (pairs, {})), ("plain", lambda: (plain, {}))], per_corpus=3)
    texts = {r.data["text"]: r.group for r in out}
    assert "short" not in texts  # under MIN_WORDS
    assert texts[shared] == valid_group  # a text seen in a validation record stays in validation
    assert stats == {"texts_pairs": 2, "texts_plain": 3}  # capped per corpus


def test_new_corpora_are_registered_with_their_sources_and_licences():
    names = build_mod.corpus_names()
    for n in ("gcide-word-definition", "gcide-word-quotation", "glossary-term-definition", "chitchat-turns",
              "bible-asv-kjv", "bible-asv-web", "bible-mhcc-commentary", "shakespeare-turns", "chatterbot-qa",
              "manpages-name-description", "fortunes", "text-mix"):  # fmt: skip
        assert n in names
    from dec2vec.corpora.fetch import LICENCES

    for c in build_mod.CORPORA:
        for s in c.sources:
            assert s in build_mod.SOURCES and s in LICENCES, s
    assert [c.name for c in build_mod.select(["gcide"])] == ["gcide-word-definition", "gcide-word-quotation"]
    assert json.loads(json.dumps([c.fields for c in build_mod.CORPORA]))  # plain JSON-able descriptions
