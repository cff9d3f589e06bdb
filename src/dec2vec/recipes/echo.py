"""Echo embeddings (arXiv 2402.15449): the text twice, mean-pooled over the second copy only.

In the second copy every token has already seen the whole text once, which gives a causal model
whole-text context at the price of twice the tokens.
"""

from dataclasses import dataclass, field

from ..inputs import Segment
from .base import Recipe, RecipeOptions
from .registry import register


@dataclass
class EchoOptions(RecipeOptions):
    first: str = field(default="Rewrite the sentence: ", metadata={"help": "text before the first copy"})
    second: str = field(default="\nRewritten sentence: ", metadata={"help": "text between the two copies"})


@register
class Echo(Recipe):
    name = "echo"
    summary = "'Rewrite the sentence: {x}\\nRewritten sentence: {x}', mean over the second copy; baseline"
    pooling = "mean"
    text_copies = 2
    Options = EchoOptions

    def segments(self, text: str, instruction: str | None) -> list[Segment]:
        o = self.options
        return [
            *self.instruction_segment(instruction),
            Segment(o.first),
            Segment(text),
            Segment(o.second),
            Segment(text, pooled=True),
        ]
