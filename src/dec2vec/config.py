"""The embedder's configuration, saved as JSON beside the weights."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "dec2vec.json"
FORMAT_VERSION = 2  # 2: causal2vec's bos_first option (format 1 folders load with it off)
DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}  # short spellings, saved canonical


# the JSON types each field of a saved description may hold (bool is not an int here)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "str | None": (str, type(None)),
    "int": (int,),
    "dict[str, Any]": (dict,),
}


def _check_types(values: dict[str, Any], path: Path) -> None:
    """A damaged or hand-edited ``dec2vec.json`` fails here in one line, not as a TypeError in loading."""
    fields = {f.name: f for f in dataclasses.fields(EmbedderConfig)}
    missing = [
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in values
    ]
    if missing:
        raise ConfigError(f"{path}: damaged model description, {', '.join(missing)} missing; copy or save it again")
    for name, value in values.items():
        kinds = _JSON_TYPES.get(str(fields[name].type)) if name in fields else None
        if kinds is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise ConfigError(
                f"{path}: damaged model description, {name} is {type(value).__name__} {value!r}; copy or save it again"
            )


@dataclass
class EmbedderConfig:
    recipe: str = field(metadata={"help": "registered recipe name (`dec2vec recipes`)"})
    backbone: str = field(metadata={"help": "where the backbone came from (name, folder or hub id)"})
    encoder: str | None = field(default=None, metadata={"help": "light encoder, for recipes with a Contextual token"})
    recipe_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "the recipe's own options"})
    max_length: int = field(default=512, metadata={"help": "longest backbone input in tokens, template included"})
    encoder_max_length: int = field(default=512, metadata={"help": "longest light-encoder input in tokens"})
    encoder_pooling: str | None = field(
        default=None, metadata={"help": "light encoder pooling: mean or cls; None = the encoder's native pooling"}
    )
    encoder_long_texts: str = field(
        default="cut",
        metadata={
            "help": "a text over the light encoder's limit: 'cut' there, or 'chunk': read in windows of the limit "
            "whose pooled vectors are averaged, weighted by their tokens"
        },
    )
    seed: int = field(default=0, metadata={"help": "seeds the initialisation of untrained heads"})
    adapter: str | None = field(
        default=None, metadata={"help": "sub-folder with a LoRA adapter (peft) applied to the backbone at load"}
    )
    dtype: str = field(default="auto", metadata={"help": "auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16"})
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8, got {self.max_length}")
        self.dtype = DTYPE_ALIASES.get(self.dtype, self.dtype)
        if self.dtype not in DTYPE_NAMES:
            raise ConfigError(f"dtype must be one of {DTYPE_NAMES}, got '{self.dtype}'")
        if self.encoder_long_texts not in ("cut", "chunk"):
            raise ConfigError(f"encoder_long_texts must be cut or chunk, got '{self.encoder_long_texts}'")
        if self.encoder_pooling not in (None, "mean", "cls"):
            raise ConfigError(f"encoder_pooling must be mean or cls, got '{self.encoder_pooling}'")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, folder: Path) -> None:
        (folder / CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> EmbedderConfig:
        path = folder / CONFIG_NAME
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:  # malformed JSON, or not UTF-8: a damaged or truncated copy
            raise ConfigError(
                f"{path}: damaged model description, not valid JSON ({e}); copy or save it again"
            ) from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: damaged model description, not a JSON object; copy or save it again")
        _check_types(values, path)
        if values.get("format_version", 1) > FORMAT_VERSION:
            raise ConfigError(f"{folder / CONFIG_NAME}: written by a newer dec2vec (format {values['format_version']})")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})
