"""bge-en-icl style: few-shot examples before the query, last-token pooling.

This is the long-sequence cost Causal2Vec is measured against. The default examples are generic
(written for dec2vec, not taken from any evaluation set); pass task-specific ones via ``examples``.
"""

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..inputs import Segment
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
    examples_without_instruction: bool = field(
        default=True,
        metadata={
            "help": "also prefix the examples when no instruction is given (symmetric tasks, documents); "
            "bge-en-icl leaves retrieval passages without them: set False and give queries an instruction"
        },
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

    def segments(self, text: str, instruction: str | None) -> list[Segment]:
        o = self.options
        task = instruction or o.task
        examples = o.examples if (instruction or o.examples_without_instruction) else []
        shots = "\n\n".join(f"<instruct>{task}\n<query>{q}\n<response>{a}" for q, a in examples)
        head = (shots + "\n\n" if shots else "") + f"<instruct>{task}\n<query>"
        return [Segment(head), Segment(text, pooled=True), Segment("\n<response>")]
