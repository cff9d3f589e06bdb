"""Training (``dec2vec train``): config, preflight, the trainer, objectives, losses, data streams, checkpoints.

Nothing is imported here, so that ``import dec2vec.train.config`` (the CLI's ``--help`` and
``dec2vec validate``) pulls in neither torch's optimisers nor the data libraries.
"""
