"""Serving: an OpenAI/TEI-compatible HTTP embedding server with dynamic batching (extra: ``dec2vec[serve]``)."""
