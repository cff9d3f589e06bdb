"""The training objectives, one registered class each; importing this package registers all of them.

A stage names one objective; a recipe lists those it trains with (its ``losses``). Adding an
objective is one class: subclass ``Objective``, set ``name`` and ``kind`` (the data it reads), add
``check_config`` / ``check_run`` if it needs its settings or files checked before training, put
``@register`` on it, import its module here, and name it in the ``losses`` of the recipes that
train with it. The run's preflight, the trainer and validation then accept it.
"""

# Imported in the order messages and docs list them; importing registers.
from . import contrastive, masked, distill  # noqa: F401, I001
from .base import KINDS, Features, Objective, StepResult
from .contrastive import Contrastive, SimCSE, batch_false_negatives, pair_documents
from .distill import Distill
from .masked import MNTP, UniMAE, mask_token_id, mask_tokens
from .registry import build_objective, get_objective, objective_names, recipes_accepting, register

__all__ = [
    "KINDS",
    "MNTP",
    "Contrastive",
    "Distill",
    "Features",
    "Objective",
    "SimCSE",
    "StepResult",
    "UniMAE",
    "batch_false_negatives",
    "build_objective",
    "get_objective",
    "mask_token_id",
    "mask_tokens",
    "objective_names",
    "pair_documents",
    "recipes_accepting",
    "register",
]
