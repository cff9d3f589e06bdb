"""Request and response bodies of the HTTP API (OpenAI ``/v1/embeddings`` and TEI ``/embed`` shapes).

Models are strict (a JSON ``"3"`` is not the integer 3) and refuse unknown fields, so a typo in a
field name is an error rather than a silently ignored option. The texts are checked by one
validator that names the bad item (``input[3] is empty``) instead of pydantic's per-branch union
errors. Token-id arrays (``[1, 2, 3]`` or ``[[1, 2], [3]]``, as OpenAI, vLLM and TEI take them) pass
here by shape only; the app checks them against the served tokenizer (:mod:`.inputs`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

_JSON_TYPES = {
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    dict: "an object",
    list: "an array",
}


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages a non-Python client understands."""
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def check_texts(value: Any, field: str) -> Any:
    """``value`` unchanged if it is a non-blank string, a non-empty list of them, a token-id array or a
    list of token-id arrays; else a named error. A list holds texts or arrays, never both."""

    def fail(param: str, message: str) -> PydanticCustomError:
        return PydanticCustomError("invalid_input", "{message}", {"message": message, "param": param})

    def token_id(item: Any) -> bool:
        return isinstance(item, int) and not isinstance(item, bool)

    def check_ids(ids: list[Any], param: str) -> None:
        if not ids:
            raise fail(param, f"{param} is an empty token array: send at least one token id")
        for j, tid in enumerate(ids):
            if not token_id(tid) or tid < 0:
                raise fail(f"{param}[{j}]", f"{param}[{j}] must be a token id (an integer >= 0), got {_short(tid)}")

    if isinstance(value, str):
        if not value.strip():
            raise fail(field, f"{field} is empty or whitespace-only")
        return value
    if not isinstance(value, list):
        raise fail(field, f"{field} must be a string, a list of strings or token ids, got {json_type(value)}")
    if not value:
        raise fail(field, f"{field} is an empty list: send at least one text")
    if token_id(value[0]):  # one token array: [1, 2, 3]
        check_ids(value, field)
        return value
    arrays = isinstance(value[0], list)
    for i, item in enumerate(value):
        param = f"{field}[{i}]"
        if arrays and isinstance(item, list):
            check_ids(item, param)
        elif arrays:
            raise fail(param, f"{param} must be a token array like {field}[0], got {json_type(item)}")
        elif isinstance(item, str):
            if not item.strip():
                raise fail(param, f"{param} is empty or whitespace-only")
        else:
            raise fail(param, f"{param} must be a string like {field}[0], got {json_type(item)}")
    return value


def _short(value: Any) -> str:
    """A received value as JSON (``true``, not Python's ``True``), cut to 40 characters."""
    import json

    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


Text = Annotated[str, StringConstraints(min_length=1)]
TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
# the schema says what check_texts enforces: a text, texts, a token array, token arrays
Texts = Text | Annotated[list[Text], Field(min_length=1)] | TokenIds | Annotated[list[TokenIds], Field(min_length=1)]


def whole_number(value: Any) -> Any:
    """1.0 -> 1: JSON Schema counts a number with no fraction as an integer; strings and booleans stay refused."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("dimensions", mode="before", check_fields=False)
    @classmethod
    def _whole(cls, value: Any) -> Any:
        return whole_number(value)


class EmbeddingRequest(_Strict):
    """OpenAI ``POST /v1/embeddings`` (``instruction`` and ``truncate`` are dec2vec extensions)."""

    input: Texts = Field(
        description="A text, a list of texts, or token ids of the served model's tokenizer (an array, or a list of "
        "arrays; GET /info gives vocab_size)."
    )
    model: str | None = Field(None, description="The served model name (GET /v1/models); optional.")
    encoding_format: Literal["float", "base64"] = Field(
        "float", description="base64: little-endian float32 bytes, as the openai client decodes them."
    )
    dimensions: int | None = Field(None, ge=1, description="Keep the first k dimensions, then renormalise.")
    user: str | None = Field(None, description="Accepted for OpenAI compatibility; ignored.")
    instruction: str | None = Field(None, description="dec2vec: task instruction written before every text.")
    truncate: bool | None = Field(None, description="dec2vec: cut (true) or reject (false) over-long inputs.")
    prompt_name: str | None = Field(None, description="dec2vec: a named instruction of the model (GET /info: prompts).")

    @field_validator("input", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return check_texts(value, "input")


class EmbedRequest(_Strict):
    """text-embeddings-inference ``POST /embed`` (``instruction`` is a dec2vec extension)."""

    inputs: Texts = Field(description="A text, a list of texts, or token ids (an array, or a list of arrays).")
    normalize: bool = Field(True, description="L2-normalise each vector (after `dimensions`).")
    truncate: bool | None = Field(None, description="Cut (true) or reject with 413 (false) over-long inputs.")
    truncation_direction: Literal["right", "Right"] = Field("right", description="Only right truncation exists.")
    dimensions: int | None = Field(None, ge=1, description="Keep the first k dimensions.")
    instruction: str | None = Field(None, description="dec2vec: task instruction written before every text.")
    prompt_name: str | None = Field(None, description="A named instruction of the model (GET /info: prompts).")

    @field_validator("inputs", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return check_texts(value, "inputs")


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer, in OpenAI's shape."""

    error: ErrorDetail


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "dec2vec"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
