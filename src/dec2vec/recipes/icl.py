"""bge-en-icl style: few-shot examples before the query, last-token pooling.

This is the long-sequence cost Causal2Vec is measured against. The default examples are generic
(written for dec2vec, not taken from any evaluation set); pass task-specific ones via ``examples``.
"""

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..inputs import Segment, TextTokenizer
from .base import Recipe, RecipeOptions
from .registry import register

DEFAULT_EXAMPLES: list[list[str]] = [
    [
        "how do plants make their food",
        (
            "Plants make food by photosynthesis: chlorophyll captures sunlight, which turns water and carbon "
            "dioxide into glucose and oxygen."
        ),
    ],
    [
        "the train was late because of snow on the tracks",
        "Heavy snowfall on the line delayed the train.",
    ],
    [
        "what causes ocean tides",
        "Tides are caused mainly by the Moon's gravity pulling on the oceans, with a smaller pull from the Sun.",
    ],
]


@dataclass
class IclOptions(RecipeOptions):
    task: str = field(
        default="Given a text, retrieve texts that are semantically similar or that answer it",
        metadata={"help": "task description used when no instruction is given"},
    )
    examples: list[list[str]] = field(
        default_factory=lambda: [list(e) for e in DEFAULT_EXAMPLES],
        metadata={"help": "few-shot [query, response] pairs"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        for i, ex in enumerate(self.examples):
            if not (isinstance(ex, (list, tuple)) and len(ex) == 2 and all(isinstance(s, str) for s in ex)):
                raise ConfigError(f"icl example {i} must be a [query, response] pair of strings")


@register
class Icl(Recipe):
    name = "icl"
    summary = "few-shot '<instruct>…<query>…<response>…' prefix, last-token pooling; baseline (long inputs)"
    pooling = "last"
    Options = IclOptions

    def segments(self, text_ids: tuple[int, ...], instruction: str | None, tt: TextTokenizer) -> list[Segment]:
        task = instruction or self.options.task
        shots = "\n\n".join(f"<instruct>{task}\n<query>{q}\n<response>{a}" for q, a in self.options.examples)
        head = (shots + "\n\n" if shots else "") + f"<instruct>{task}\n<query>"
        return [Segment(tt.ids(head)), Segment(text_ids, pooled=True), Segment(tt.ids("\n<response>"))]
