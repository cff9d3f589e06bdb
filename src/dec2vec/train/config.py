"""Training configuration: dataclasses with help text and validation, read from YAML.

A run is a model (recipe, backbone, encoder), how its parameters train (LoRA or full, encoder
mode), and a list of stages (e.g. llm2vec's mntp -> simcse -> contrastive), each with its own
objective, data, steps and optimiser settings. ``--set key=value`` overrides any field by its
dotted path (``stages.0.steps=20``), so configs in ``configs/`` stay the single source of truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError
from .config_files import apply_override, read_config_file

ENCODER_MODES = ("frozen", "full", "lora")
PRECISIONS = ("fp32", "bf16")
PROJECTOR_INITS = ("random", "lstsq")
DISTRIBUTED = ("ddp", "fsdp")

T = TypeVar("T")


def _from_dict(cls: type[T], values: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys with their dotted path."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {unknown}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        sub = _NESTED.get((cls.__name__, name))
        if sub is not None:
            if isinstance(value, list):
                value = [_from_dict(sub, v, f"{where}.{name}.{i}".lstrip(".")) for i, v in enumerate(value)]
            else:
                value = _from_dict(sub, value, f"{where}.{name}".lstrip("."))
        kwargs[name] = _coerce(value, str(known[name].type), f"{where}.{name}".lstrip("."))
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None
    except TypeError as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _coerce(value: Any, typ: str, where: str) -> Any:
    """Numbers written as strings (YAML reads ``1e-4`` as a string) -> their declared type."""
    if value is None or not isinstance(value, str):
        if typ.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    base = typ.split("|")[0].strip()
    if base in ("float", "int"):
        try:
            return float(value) if base == "float" else int(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got '{value}'") from None
    return value


@dataclass
class DataSpec:
    path: str = field(metadata={"help": "a JSONL file: {query, positive[, negative|negatives]} or {text}"})
    instruction: str | None = field(default=None, metadata={"help": "task instruction, written before queries only"})
    weight: float = field(default=1.0, metadata={"help": "relative chance that a batch is drawn from this source"})
    name: str | None = field(default=None, metadata={"help": "label in logs and checkpoints (default: file stem)"})
    text_field: str = field(default="text", metadata={"help": "field read by unsupervised objectives"})

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ConfigError(f"data weight must be > 0, got {self.weight}")
        self.name = self.name or Path(self.path).name.split(".")[0]


@dataclass
class StageConfig:
    objective: str = field(metadata={"help": "a registered objective (train/objectives); one of the recipe's losses"})
    data: list[DataSpec] = field(default_factory=list, metadata={"help": "one or more sources"})
    steps: int = field(default=100, metadata={"help": "optimizer steps in this stage"})
    batch_size: int = field(default=32, metadata={"help": "global batch (all processes together)"})
    data_seed: int | None = field(
        default=None,
        metadata={
            "help": "seed of this stage's data order; None = the run's seed + 1000 x the stage's index. Give a "
            "stage shared with another run the seed it has there (its index 0: the run's seed) to draw its batches"
        },
    )
    chunk_size: int = field(default=0, metadata={"help": "gradient-cache chunk for contrastive/simcse; 0 = off"})
    lr: float = field(default=1e-4, metadata={"help": "peak learning rate"})
    head_lr: float | None = field(default=None, metadata={"help": "learning rate of heads (projector...); None = lr"})
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up, then linear decay to 0"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping; 0 = off"})
    temperature: float = field(default=0.05, metadata={"help": "InfoNCE temperature (contrastive, simcse)"})
    hard_negatives: int = field(default=1, metadata={"help": "hard negatives per query used from the data"})
    mask_ratio: float = field(default=0.2, metadata={"help": "share of text tokens masked (mntp, unimae MAR)"})
    mrc_mask_ratio: float = field(default=0.5, metadata={"help": "share of keys hidden per row in UniMAE's decoder"})
    alpha: float = field(default=1.0, metadata={"help": "UniMAE: L = alpha * L_MAR + L_MRC"})
    dropout: float | None = field(default=None, metadata={"help": "attention dropout during the stage (simcse)"})
    max_length: int | None = field(default=None, metadata={"help": "token limit of training inputs; None = model's"})
    name: str | None = field(default=None, metadata={"help": "label in logs (default: the objective)"})
    teacher: str = field(
        default="all-mpnet-base-v2", metadata={"help": "distill: teacher encoder (registry name or local folder)"}
    )
    teacher_max_length: int | None = field(
        default=None, metadata={"help": "distill: teacher token limit; None = the teacher's own (384 for mpnet)"}
    )
    teacher_long_texts: str = field(
        default="cut",
        metadata={
            "help": "distill: a text over the teacher's limit is cut there, or 'chunk': read in windows of the "
            "limit whose vectors are averaged (token-weighted), so long passages are distilled whole"
        },
    )
    distill_kl: float = field(
        default=1.0, metadata={"help": "distill: weight of KL(teacher || student) of the in-batch similarity softmax"}
    )
    distill_mse: float = field(
        default=0.0, metadata={"help": "distill: weight of the MSE between the in-batch cosine matrices"}
    )
    distill_nce: float = field(
        default=0.0, metadata={"help": "distill, pair data: weight of InfoNCE on query->positive with soft labels"}
    )
    soft_labels: float = field(
        default=1.0, metadata={"help": "distill_nce target: share of the teacher's distribution (rest: one-hot)"}
    )
    part_loss: float = field(
        default=0.0,
        metadata={
            "help": "weight of the stage's loss applied to each part of a composite embedding too (Causal2Vec's "
            "h_ctx and h_eos, averaged): a part the loss never sees alone can go constant (docs/RESULTS.md)"
        },
    )
    distill_temperature: float = field(
        default=0.05, metadata={"help": "distill: temperature of both similarity softmaxes (and the soft labels)"}
    )

    def __post_init__(self) -> None:
        # the objective's name and its own needs are checked by train/preflight.py, which reads the registry:
        # this module imports no objective, so the objectives can annotate with its types
        if not self.data:
            raise ConfigError("a stage needs at least one data source")
        for key in ("steps", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.chunk_size < 0:
            raise ConfigError(f"chunk_size must be >= 0, got {self.chunk_size}")
        for key in ("mask_ratio", "mrc_mask_ratio"):
            if not 0.0 < getattr(self, key) < 1.0:
                raise ConfigError(f"{key} must be in (0, 1), got {getattr(self, key)}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.hard_negatives < 0:
            raise ConfigError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        if self.warmup_steps < 0 or self.max_grad_norm < 0 or self.weight_decay < 0:
            raise ConfigError("warmup_steps, max_grad_norm and weight_decay must be >= 0")
        if self.lr <= 0 or (self.head_lr is not None and self.head_lr <= 0):
            raise ConfigError(f"lr and head_lr must be > 0, got {self.lr} and {self.head_lr}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.max_length is not None and self.max_length < 8:
            raise ConfigError(f"max_length must be >= 8, got {self.max_length}")
        weights = (self.distill_kl, self.distill_mse, self.distill_nce)
        if min(weights) < 0:
            raise ConfigError(f"distill_kl, distill_mse, distill_nce must be >= 0 and not all 0, got {weights}")
        if self.teacher_long_texts not in ("cut", "chunk"):
            raise ConfigError(f"teacher_long_texts must be 'cut' or 'chunk', got '{self.teacher_long_texts}'")
        if self.part_loss < 0:
            raise ConfigError(f"part_loss must be >= 0, got {self.part_loss}")
        if not 0.0 <= self.soft_labels <= 1.0:
            raise ConfigError(f"soft_labels must be in [0, 1], got {self.soft_labels}")
        if self.distill_temperature <= 0:
            raise ConfigError(f"distill_temperature must be > 0, got {self.distill_temperature}")
        self.name = self.name or self.objective


@dataclass
class LoraSpec:
    enabled: bool = field(default=True, metadata={"help": "LoRA on the backbone; false = full fine-tuning"})
    r: int = field(default=16, metadata={"help": "LoRA rank"})
    alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    target_modules: list[str] | None = field(
        default=None, metadata={"help": "None = every Linear inside the repeated transformer blocks"}
    )
    skip_layers: list[int] = field(
        default_factory=list,
        metadata={"help": "decoder layers (0-based, negative from the end) left without LoRA"},
    )

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"lora needs r >= 1, alpha >= 1 and 0 <= dropout < 1; got {self.r}, {self.alpha}, {self.dropout}"
            )
        if self.skip_layers and self.target_modules is not None:
            raise ConfigError("lora: skip_layers applies to the found targets; drop it or target_modules")


@dataclass
class ModelSpec:
    recipe: str = field(metadata={"help": "registered recipe (`dec2vec recipes`)"})
    backbone: str = field(default="smollm2-135m-instruct", metadata={"help": "registry name, folder or hub id"})
    encoder: str | None = field(default=None, metadata={"help": "light encoder (causal2vec); None = default"})
    init: str | None = field(
        default=None, metadata={"help": "start from a saved dec2vec folder ($DEC2VEC_HOME allowed)"}
    )
    recipe_options: dict[str, Any] = field(default_factory=dict, metadata={"help": "the recipe's options"})
    max_length: int = field(default=512, metadata={"help": "longest backbone input in tokens"})
    encoder_long_texts: str = field(
        default="cut", metadata={"help": "Causal2Vec: a text over the light encoder's limit: 'cut' or 'chunk'"}
    )
    dtype: str = field(default="float32", metadata={"help": "weights dtype: float32 or bfloat16"})


@dataclass
class TrainConfig:
    model: ModelSpec = field(metadata={"help": "what to train"})
    stages: list[StageConfig] = field(metadata={"help": "run in order; one optimizer and schedule per stage"})
    output_dir: str = field(default="runs/dec2vec", metadata={"help": "checkpoints, logs and the final model"})
    seed: int = field(default=0, metadata={"help": "seeds heads, data order, masks and dropout"})
    lora: LoraSpec = field(default_factory=LoraSpec, metadata={"help": "backbone LoRA; enabled=false trains fully"})
    encoder_mode: str = field(default="frozen", metadata={"help": f"Causal2Vec light encoder: {ENCODER_MODES}"})
    merge_on_save: bool = field(default=True, metadata={"help": "merge LoRA into the saved backbone"})
    checkpoint_every: int = field(default=50, metadata={"help": "steps between checkpoints; 0 = only at the end"})
    keep_checkpoints: int = field(default=2, metadata={"help": "how many recent checkpoints to keep"})
    log_every: int = field(default=1, metadata={"help": "steps between log rows"})
    tensorboard: bool = field(default=False, metadata={"help": "also write TensorBoard events (needs tensorboard)"})
    shuffle_buffer: int = field(default=10000, metadata={"help": "records shuffled together while streaming"})
    skip_bad: bool = field(default=False, metadata={"help": "skip malformed data lines (counted) instead of failing"})
    max_bad_steps: int = field(default=5, metadata={"help": "abort after this many non-finite losses in a row"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda...; None = CUDA when present"})
    precision: str = field(
        default="fp32",
        metadata={
            "help": "fp32, or bf16: forward passes under bf16 autocast (weights, gradients, optimizer stay fp32)"
        },
    )
    length_buckets: int = field(
        default=0,
        metadata={
            "help": "group records of similar length: draw this many batches of one source at once, sort by "
            "length, cut into batches, serve them in a seeded order; 0 = off"
        },
    )
    projector_init: str = field(
        default="random",
        metadata={"help": "causal2vec: random, or lstsq (projector output layer fitted to mean token embeddings)"},
    )
    projector_init_texts: int = field(
        default=2048, metadata={"help": "texts of the first stage's data used by projector_init: lstsq"}
    )
    validate_every: int = field(
        default=0,
        metadata={
            "help": "steps between held-out validations (valid.csv: MRR and R@1 on the *.valid.jsonl split of "
            "the pair sources), also run at step 0 and at the end of each stage; 0 = off"
        },
    )
    validate_pairs: int = field(
        default=50, metadata={"help": "validate_every: pairs per source in each validation pool"}
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata={
            "help": "recompute the backbone's layer activations in the backward pass: less memory, ~30% more compute"
        },
    )
    compile: bool = field(
        default=False, metadata={"help": "torch.compile each decoder layer (dynamic shapes); off: eager"}
    )
    prefetch: bool = field(
        default=True, metadata={"help": "read and tokenise the next batch in a background thread while a step runs"}
    )
    distributed: str = field(
        default="ddp",
        metadata={
            "help": f"{DISTRIBUTED}: under torchrun, ddp keeps a whole model per process and averages gradients; "
            "fsdp shards parameters, gradients and optimizer state over the processes (FSDP2, full fine-tuning)"
        },
    )

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("the config has no stages")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got '{self.precision}'")
        if self.projector_init not in PROJECTOR_INITS:
            raise ConfigError(f"projector_init must be one of {PROJECTOR_INITS}, got '{self.projector_init}'")
        if self.length_buckets < 0 or self.length_buckets == 1:
            raise ConfigError(f"length_buckets must be 0 (off) or >= 2, got {self.length_buckets}")
        if self.distributed not in DISTRIBUTED:
            raise ConfigError(f"distributed must be one of {DISTRIBUTED}, got '{self.distributed}'")
        if self.distributed == "fsdp":
            _check_fsdp(self)
        if self.encoder_mode not in ENCODER_MODES:
            raise ConfigError(f"encoder_mode must be one of {ENCODER_MODES}, got '{self.encoder_mode}'")
        for key, low in (
            ("checkpoint_every", 0),
            ("keep_checkpoints", 1),
            ("log_every", 1),
            ("shuffle_buffer", 1),
            ("max_bad_steps", 1),
            ("validate_every", 0),
            ("validate_pairs", 2),
        ):
            if getattr(self, key) < low:
                raise ConfigError(f"{key} must be >= {low}, got {getattr(self, key)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, values, "")


def _check_fsdp(cfg: TrainConfig) -> None:
    """What ``distributed: fsdp`` (train/fsdp.py) cannot train with (``ConfigError``), before any model is built;
    an objective that runs the backbone outside the model's forward is refused by train/preflight.py."""
    if cfg.lora.enabled:
        raise ConfigError("distributed: fsdp is for full fine-tuning; set lora.enabled: false (LoRA trains under ddp)")
    if cfg.validate_every:
        raise ConfigError("distributed: fsdp cannot validate during the run (validate_every: 0); evaluate the model")
    if cfg.projector_init != "random":
        raise ConfigError("distributed: fsdp needs projector_init: random")


_NESTED: dict[tuple[str, str], type] = {
    ("TrainConfig", "model"): ModelSpec,
    ("TrainConfig", "stages"): StageConfig,
    ("TrainConfig", "lora"): LoraSpec,
    ("StageConfig", "data"): DataSpec,
}


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """YAML file (or nothing) plus ``key=value`` overrides -> validated TrainConfig.

    A file may start from another with ``base: other.yaml`` (relative to the file) and say only what
    differs, so a method compared at the flagship's budget shares its data, instructions and schedule
    instead of copying them (``configs/repro/``). See ``merge_configs`` for how the two combine.
    """
    values: dict[str, Any] = {} if path is None else read_config_file(Path(path))
    for assignment in overrides or []:
        apply_override(values, assignment)
    return TrainConfig.from_dict(values)
