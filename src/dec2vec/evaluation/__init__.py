"""The evaluation suite (issue 4). So far: the task data, built from package-shipped files (see docs/EVALUATION.md).

``tasks`` holds the data containers, ``sources`` reads the packages, ``builders`` makes each task
(splits, quick subsets, BM25 candidates) and ``datasets`` names, caches and loads them.
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
