"""The evaluation suite: an offline mini-MTEB scored by mteb's own evaluators (docs/EVALUATION.md).

``tasks`` holds the data containers, ``sources`` reads the packages, ``builders`` makes each task
(splits, quick subsets, BM25 candidates) and ``datasets`` names, caches and loads them.
``mteb_tasks`` turns them into mteb tasks, ``encoders`` wraps the compared models (dec2vec, LSA,
MiniLM) for mteb, ``generation`` measures what training did to the LM head, ``run`` drives
``dec2vec eval`` and ``report``/``plots`` write its outputs.
"""

from .datasets import build_tasks, load_task, task_names
from .tasks import ClassificationData, ClusteringData, RerankingData, RetrievalData, STSData, TaskData

__all__ = [
    "ClassificationData",
    "ClusteringData",
    "RerankingData",
    "RetrievalData",
    "STSData",
    "TaskData",
    "build_tasks",
    "load_task",
    "task_names",
]
