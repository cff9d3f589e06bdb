"""Config files as mappings: YAML read, ``base:`` chains merged, ``--set key=value`` applied.

Kept apart from the dataclasses of ``config.py``: this is about files and dicts, before any
validation; ``load_config`` joins the two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError


def apply_override(values: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.0.c=value`` to a nested dict/list; the value is parsed as YAML (numbers, lists...)."""
    import yaml

    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got '{assignment}'")
    key, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"--set {key.strip()}: the value {raw!r} is not valid YAML ({problem})") from None
    parts = key.strip().split(".")
    node: Any = values
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"--set {key}: '{part}' is not an index of a list of {len(node)}")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"--set {key}: '{'.'.join(parts[:i])}' is not a mapping or list")


def expand_home(path: str) -> Path:
    """A configured path with ``$DEC2VEC_HOME`` (or ``${DEC2VEC_HOME}``) replaced by dec2vec's cache root,
    set or not, then other environment variables and ``~`` expanded: long runs keep their outputs out of
    the work tree."""
    import os

    from ..models import cache_home

    for token in ("${DEC2VEC_HOME}", "$DEC2VEC_HOME"):
        path = path.replace(token, str(cache_home()))
    return Path(os.path.expandvars(path)).expanduser()


def read_config_file(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file as a mapping, with its ``base`` chain resolved (cycles refused)."""
    import yaml

    if not path.is_file():
        where = f" (the base of {_chain[-1]})" if _chain else ""
        raise ConfigError(f"config file not found: {path}{where}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text (YAML) file: not valid UTF-8 at byte {e.start}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    base = values.pop("base", None)
    if base is None:
        return values
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must be the path of another config file, got {base!r}")
    base_path = (path.parent / expand_home(base)).resolve()
    if base_path in _chain or base_path == path.resolve():
        raise ConfigError(f"{path}: base {base} leads back to itself")
    return merge_configs(read_config_file(base_path, (*_chain, path.resolve())), values, str(path))


def merge_configs(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merge key by key, anything else (lists too) is replaced.

    ``stages`` is the exception that keeps instructions defined once: an entry of the overriding list
    may be ``{base_stage: NAME, ...}``, which is the base's stage of that name (its objective if it
    has no name) with the entry's other keys merged on top.
    """
    out = dict(base)
    for key, value in over.items():
        if key == "stages" and isinstance(value, list):
            out[key] = [
                _stage_from_base(base.get("stages") or [], s, f"{where}: stages.{i}") for i, s in enumerate(value)
            ]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merge_configs(base[key], value, where)
        else:
            out[key] = value
    return out


def _stage_from_base(base_stages: list[Any], stage: Any, where: str) -> Any:
    if not isinstance(stage, dict) or "base_stage" not in stage:
        return stage
    name = stage["base_stage"]
    names = [s.get("name") or s.get("objective") for s in base_stages if isinstance(s, dict)]
    if name not in names:
        raise ConfigError(f"{where}: base_stage '{name}' is not a stage of the base; its stages: {names}")
    rest = {k: v for k, v in stage.items() if k != "base_stage"}
    return merge_configs(base_stages[names.index(name)], rest, where)
