"""``dec2vec bench``: every recipe's cost on the same texts, beside sentence-transformers.

texts (mixed real lengths, fixed-length sweep) -> measure (time, tokens, padding, peak memory)
-> flops (MFU against a measured matmul rate) -> run (side-by-side tables, JSON, Markdown).
"""
