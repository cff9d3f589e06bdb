"""Bridges to other libraries: sentence-transformers (``sentence_transformers``), Ray Data (``ray``)."""
