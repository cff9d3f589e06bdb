"""Grounding checks, without a model: sentences, content words, support of a claim, relevance."""

import numpy as np
import pytest

from dec2vec.search.grounding import (
    content_words,
    lexical_overlap,
    refers_back,
    relevance,
    split_sentences,
    support,
    supported_prefix,
)

HOOVER = (
    "The Hoover Dam is a concrete arch-gravity dam in the Black Canyon of the Colorado River, on the boundary "
    "between the U.S. states of Nevada and Arizona. Constructed between 1931 and 1936, it was dedicated on "
    "September 30, 1935, by President Franklin D. Roosevelt."
)
PRIDE = (
    "Pride and Prejudice is a novel by English author Jane Austen. Written when she was aged 20–21, it was her third."
)
ROMEO = "Romeo and Juliet is a tragedy written by William Shakespeare early in his career."
DENALI = "Denali is the highest mountain peak in North America, with a summit elevation of 20,310 feet (6,190 m)."


def test_sentences_split_at_ends_not_at_initials_abbreviations_or_lowercase():
    assert split_sentences(HOOVER) == [
        "The Hoover Dam is a concrete arch-gravity dam in the Black Canyon of the Colorado River, on the boundary "
        "between the U.S. states of Nevada and Arizona.",
        "Constructed between 1931 and 1936, it was dedicated on September 30, 1935, by President Franklin "
        "D. Roosevelt.",
    ]
    assert split_sentences("A title\nThe first line is here. Is it? Yes! And (so) on.") == [
        "A title",
        "The first line is here. Is it? Yes!",  # fragments under three words join the sentence before
        "And (so) on.",
    ]
    assert split_sentences("Dr. Smith met Mr. Jones. They spoke at length.") == [
        "Dr. Smith met Mr. Jones.",
        "They spoke at length.",
    ]
    assert split_sentences("  ") == []


def test_content_words_compare_loosely():
    assert content_words("Whales, the whale's, WHALE") == {"whale"}
    assert content_words("20,310 feet") == content_words("20310 feet") == {"20310", "feet"}
    assert content_words("Salvador Dalí") == content_words("salvador dali")
    assert content_words("The answer is [1]: what is it?") == set()  # stopwords, words about answers, citations
    assert "compos" in content_words("composer") & content_words("composed")


def test_support_needs_the_claim_in_one_passage_about_the_question():
    q = "Which dam is on the Colorado River?"
    found = support("The Hoover Dam is on the Colorado River [2].", q, [ROMEO, HOOVER])
    assert found is not None and found.passage == 1 and found.claimed == {"hoover"}
    assert support("The Colorado River dam.", q, [HOOVER]) is None  # only the question's words: no answer
    q = "Who wrote Pride and Prejudice?"
    assert support("Jane Austen wrote it.", q, [ROMEO, PRIDE]).passage == 1
    assert support("William Shakespeare wrote Pride and Prejudice.", q, [PRIDE, ROMEO]) is None  # a wrong name
    assert support("The Tragedy of Romeo and Juliet.", q, [PRIDE, ROMEO]) is None  # true, but another topic
    q = "How high is Denali?"
    assert support("Denali is 20,310 feet high.", q, [DENALI]) is not None
    assert support("Denali is 8,848 feet high.", q, [DENALI]) is None  # a number the passage does not hold
    q = "When was the Hoover Dam dedicated?"
    assert support("It was dedicated by Roosevelt in 1935.", q, [HOOVER]) is not None
    assert support("It was dedicated by Napoleon in 1935.", q, [HOOVER]) is None


def test_supported_prefix_stops_at_the_first_unsupported_sentence():
    q = "Who wrote Pride and Prejudice?"
    kept = supported_prefix("Jane Austen wrote it [1]. She was 20 then. It sold a billion copies.", q, [PRIDE])
    assert [s for s, _ in kept] == ["Jane Austen wrote it.", "She was 20 then."]
    cut = supported_prefix("Jane Austen wrote it. She was her third novel and", q, [PRIDE])
    assert [s for s, _ in cut] == ["Jane Austen wrote it."]  # a sentence cut off by the token limit is dropped
    assert [s for s, _ in supported_prefix("The answer to this question is: (Jane Austen) [1]", q, [PRIDE])] == [
        "Jane Austen"
    ]
    assert supported_prefix("B", q, [PRIDE]) == []
    assert supported_prefix("A jackfruit.", q, [PRIDE]) == []


def test_relevance_overlap_and_pronouns():
    assert relevance(0.9, np.array([0.5, 0.7])) == pytest.approx(0.75)
    np.testing.assert_allclose(relevance(np.array([0.6, 1.0]), np.array([0.6])), [0.0, 1.0])
    assert relevance(0.5, np.array([])) == pytest.approx(0.5)
    np.testing.assert_allclose(lexical_overlap("Which dam is on the Colorado River?", [HOOVER, ROMEO]), [1.0, 0.0])
    assert refers_back("She was the first woman in space.") and not refers_back("Io is a moon of Jupiter.")
