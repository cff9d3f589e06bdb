"""Bridges to other libraries (sentence-transformers)."""
