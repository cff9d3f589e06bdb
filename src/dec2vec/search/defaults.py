"""Flag defaults shared by the API and the CLI (kept import-light: ``dec2vec --help`` reads them).

A new index's model is the default model (``pretrained.DEFAULT_MODEL``), as for ``embed`` and
``serve``: one default everywhere. An existing index keeps the model it was built with.
"""

DEFAULT_INSTRUCTION = "Given a question, retrieve passages that answer it"
DEFAULT_BATCH = 128  # chunks embedded and committed together: the most a crash can cost
DEFAULT_K = 4  # sources for ask
DEFAULT_MAX_NEW_TOKENS = 128
DEFAULT_CONTEXT_TOKENS = 2048  # prompt + answer: well under SmolLM2's 8192, and quick on a CPU
DEFAULT_MIN_RELEVANCE = 0.5  # ask: weaker best hits get "cannot answer" (measured in docs/SEARCH.md)
ASK_MODES = ("auto", "extractive", "generate")  # ask: generate and check, else quote; only quote; only generate
