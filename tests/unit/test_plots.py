"""The eval report's PNG plots: valid files, written atomically, and a silhouette that means something."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from dec2vec.evaluation import plots  # noqa: E402
from dec2vec.evaluation.plots import plot_embeddings, plot_scores  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> tuple[int, int]:
    """The file is a PNG that matplotlib reads back; returns its (height, width) in pixels."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = imread(path)
    assert image.shape[0] > 0 and image.shape[1] > 0
    return image.shape[0], image.shape[1]


def no_temp_files(folder: Path, keep: Path) -> None:
    assert sorted(folder.iterdir()) == [keep]


def clusters(n_per: int = 20, k: int = 3, dim: int = 16, spread: float = 0.05, seed: int = 0):
    """``k`` tight clusters around random directions: (k * n_per, dim) rows and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim))
    rows = np.concatenate([c + spread * rng.normal(size=(n_per, dim)) for c in centres])
    labels = [f"class {i}" for i in range(k) for _ in range(n_per)]
    return rows.astype(np.float32), labels


@pytest.fixture(scope="module")
def embedding_run(tmp_path_factory):
    """The one real t-SNE call (~2 s on a busy CPU), shared by the tests that only read its result."""
    rows, labels = clusters()
    folder = tmp_path_factory.mktemp("emb")
    path = folder / "map.png"
    path.write_bytes(b"old contents")  # replaced atomically
    sil = plot_embeddings({"separated": rows}, labels, path, seed=0, title="clusters")
    return path, sil


@pytest.fixture
def cheap_projection(monkeypatch):
    """Replaces t-SNE by the first two coordinates where the test is not about the projection."""
    monkeypatch.setattr(plots, "_projector", lambda method, seed, n: lambda x: x[:, :2])


def test_scores_png_with_missing_scores_types_and_negatives(tmp_path):
    scores = {
        "model-a": {"sts": 0.71, "cls": 0.55, "clu": None, "ret": 0.3},
        "model-b": {"sts": -0.12, "cls": 0.61, "ret": None},  # no "clu" at all
        "model-c": {"sts": None, "cls": None, "clu": None, "ret": None},
    }
    types = {"sts": "sts", "cls": "classification", "clu": "clustering", "ret": "retrieval"}
    path = plot_scores(scores, tmp_path / "scores.png", title="demo", task_types=types)
    assert path == tmp_path / "scores.png"
    assert_png(path)


def test_scores_figure_grows_with_the_counts(tmp_path):
    small = plot_scores({"m": {"t": 0.5}}, tmp_path / "small.png")
    many = {f"model-{i}": {f"task-{j}": (i + j) / 20 for j in range(8)} for i in range(12)}
    big = plot_scores(many, tmp_path / "big.png", task_types={f"task-{j}": "sts" for j in range(8)})
    assert assert_png(big)[1] > assert_png(small)[1]


def test_scores_tasks_ordered_by_type():
    scores = {"m": {"r": 0.1, "s": 0.2, "x": 0.3, "c": 0.4}}
    types = {"r": "retrieval", "s": "sts", "c": "classification"}  # "x" untyped -> last
    assert plots._ordered_tasks(scores, types) == ["s", "c", "r", "x"]
    assert plots._ordered_tasks(scores, {}) == ["r", "s", "x", "c"]


def test_scores_empty_raises(tmp_path):
    with pytest.raises(ValueError, match="no scores"):
        plot_scores({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no scores"):
        plot_scores({"m": {}}, tmp_path / "x.png")


def test_scores_replace_existing_file_atomically(tmp_path):
    path = tmp_path / "scores.png"
    path.write_bytes(b"not a png")
    plot_scores({"m": {"t": 0.5}}, path)
    assert_png(path)
    no_temp_files(tmp_path, path)


def test_embeddings_png_replaces_old_file(embedding_run):
    path, sil = embedding_run
    assert_png(path)
    no_temp_files(path.parent, path)
    assert list(sil) == ["separated"]


def test_embeddings_silhouette_of_separated_clusters(embedding_run):
    _, sil = embedding_run
    assert sil["separated"] > 0.5


def test_embeddings_silhouette_per_model_in_a_grid(tmp_path, cheap_projection):
    rows, labels = clusters()
    rng = np.random.default_rng(1)
    models = {"separated": rows, "noise": rng.normal(size=rows.shape)}
    models |= {f"extra-{i}": rows + 0.01 * rng.normal(size=rows.shape) for i in range(4)}  # 6 models: 2 rows
    sil = plot_embeddings(models, labels, tmp_path / "grid.png")
    assert list(sil) == list(models)
    assert sil["separated"] > 0.5 and abs(sil["noise"]) < 0.1
    height, width = assert_png(tmp_path / "grid.png")
    assert height > 0.4 * width  # two rows of four columns, not one long strip


def test_embeddings_silhouette_is_of_the_original_embeddings(embedding_run):
    from sklearn.metrics import silhouette_score

    _, sil = embedding_run
    rows, labels = clusters()
    assert sil["separated"] == pytest.approx(silhouette_score(rows, labels, metric="cosine"), abs=1e-6)


def test_embeddings_mismatched_rows_raise(tmp_path):
    rows, labels = clusters(n_per=5)
    with pytest.raises(ValueError, match="'bad' have 14 rows but 15 labels"):
        plot_embeddings({"ok": rows, "bad": rows[:-1]}, labels, tmp_path / "x.png")
    with pytest.raises(ValueError, match="2-D"):
        plot_embeddings({"flat": rows[:, 0]}, labels, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temp file


def test_embeddings_bad_method_and_missing_umap(tmp_path, monkeypatch):
    rows, labels = clusters(n_per=5)
    with pytest.raises(ValueError, match="unknown method"):
        plot_embeddings({"m": rows}, labels, tmp_path / "x.png", method="pca")
    import sys

    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` raise ImportError
    with pytest.raises(ImportError, match="pip install umap-learn"):
        plot_embeddings({"m": rows}, labels, tmp_path / "x.png", method="umap")


def test_embeddings_single_label_gives_nan_silhouette(tmp_path, cheap_projection):
    rows, _ = clusters(n_per=4, k=2)
    sil = plot_embeddings({"m": rows}, ["same"] * len(rows), tmp_path / "one.png")
    assert math.isnan(sil["m"])
    assert_png(tmp_path / "one.png")


def test_pyplot_state_is_left_alone(tmp_path):
    """A caller's pyplot figures and backend survive a plot (no backend switch, no registry entry)."""
    import matplotlib.pyplot as plt

    backend = plt.get_backend()
    fig = plt.figure()
    try:
        plot_scores({"m": {"t": 0.5}}, tmp_path / "s.png")
        assert plt.get_backend() == backend
        assert plt.get_fignums() == [fig.number]
    finally:
        plt.close(fig)


def test_matplotlib_and_sklearn_are_imported_lazily():
    """Importing the module must not need the optional ``eval`` packages."""
    tree = ast.parse(Path(plots.__file__).read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [a.name for n in top_level if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in top_level if isinstance(n, ast.ImportFrom)]
    assert not [m for m in names if m.split(".")[0] in {"matplotlib", "sklearn", "umap"}]


def test_written_png_has_ordinary_permissions(tmp_path):
    """The report's PNGs get the umask's permissions, like any file the user writes (not mkstemp's 0600)."""
    reference = tmp_path / "ref.txt"
    reference.write_text("x")
    path = plot_scores({"m": {"t": 0.5}}, tmp_path / "s.png")
    assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "scores.png"
    path.write_bytes(b"old")

    def fail(self, fname, **kwargs):
        Path(fname).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        plot_scores({"m": {"t": 0.5}}, path)
    assert path.read_bytes() == b"old"
    no_temp_files(tmp_path, path)
