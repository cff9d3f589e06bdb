"""Concepts the rest of dec2vec builds on, each written once.

- :mod:`.files`: ``write_atomic`` / ``atomic_path`` for files and ``atomic_folder`` / ``swap_folder``
  for folders: a reader sees the old version or the new one, never half of one, and what a killed
  writer leaves behind is cleaned up by the next write.
- :mod:`.fingerprint`: ``module_digest``, the one sha256 of a module's weights (result caches and
  index identities are keyed on it).
- :mod:`.provenance`: ``library_versions``, the versions a result was produced with.

Layering: nothing here imports from the rest of dec2vec (``tests/unit/test_import_graph.py`` checks
it), so any module may import these without a cycle. This file imports nothing either: ``files``
must stay importable without torch.
"""
