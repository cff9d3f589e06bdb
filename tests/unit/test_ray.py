"""Bulk embedding with Ray Data on a local CPU Ray instance and a tiny saved model."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline and quiet: no usage report
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

ray = pytest.importorskip("ray")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from dec2vec import ConfigError, Embedder, InputError  # noqa: E402
from dec2vec.integrations.ray import EmbedBatch, embed_dataset, embed_parquet  # noqa: E402
from tests.conftest import SENTENCES  # noqa: E402

TEXTS = [f"{s} {w}" for w in ("one", "two", "three", "four") for s in SENTENCES]  # 20 texts, lengths vary


@pytest.fixture(scope="module")
def saved(tiny_backbone, tmp_path_factory):
    """A saved tiny `mean` embedder: actors load it by path, as they would a real one."""
    folder = tmp_path_factory.mktemp("ray-model") / "mean"
    Embedder.from_recipe("mean", backbone=tiny_backbone, device="cpu").save_pretrained(folder)
    return folder, Embedder.from_pretrained(folder, device="cpu")  # the API's default load: the actors' too


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (its start costs seconds); shut down at the end."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=128 * 2**20,
        configure_logging=False,
    )
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


class CountingEmbedBatch(EmbedBatch):
    """Records each model load and each batch, by process, in files the test reads back."""

    def __init__(self, model, log_dir, **kwargs):
        super().__init__(model, **kwargs)
        self.log_dir = log_dir

    def _load(self):
        with open(os.path.join(self.log_dir, "loads"), "a") as f:
            f.write(f"{os.getpid()}\n")
        return super()._load()

    def __call__(self, batch):
        with open(os.path.join(self.log_dir, "calls"), "a") as f:
            f.write(f"{os.getpid()}\n")
        return super().__call__(batch)


# ---- on a local Ray instance --------------------------------------------------------------------------


@pytest.mark.slow
def test_embed_parquet_round_trip_keeps_columns_order_and_resumes(ray_local, saved, tmp_path):
    folder, emb = saved
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    pq.write_table(pa.table({"id": list(range(12)), "text": TEXTS[:12]}), src / "a.parquet", row_group_size=5)
    pq.write_table(pa.table({"id": list(range(12, 20)), "text": TEXTS[12:]}), src / "sub" / "b.parquet")
    out, logs = tmp_path / "out", tmp_path / "logs"
    logs.mkdir()
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # actors cannot import this test module

    result = embed_parquet(src, out, folder, batch_size=3, threads=1, udf=CountingEmbedBatch, log_dir=str(logs))

    assert result.rows == 20 and result.written == [out / "a.parquet", out / "sub" / "b.parquet"]
    got = pq.read_table(out / "a.parquet").to_pylist() + pq.read_table(out / "sub" / "b.parquet").to_pylist()
    assert [r["id"] for r in got] == list(range(20)) and [r["text"] for r in got] == TEXTS
    schema = pq.read_schema(out / "a.parquet")
    assert schema.names == ["id", "text", "embedding"]
    assert schema.field("embedding").type == pa.list_(pa.float32(), emb.embedding_dim)
    vecs = np.array([r["embedding"] for r in got], dtype=np.float32)
    assert cosines(vecs, emb.encode(TEXTS)).min() >= 0.9999

    calls, loads = (logs / "calls").read_text().split(), (logs / "loads").read_text().split()
    assert len(calls) >= 7 and sorted(loads) == sorted(set(calls))  # 7+ batches (blocks of 3 rows), one load per actor
    stamp = (out / "a.parquet").stat().st_mtime_ns
    again = embed_parquet(src, out, folder)  # everything is done: nothing is re-embedded or rewritten
    assert again.rows == 0 and again.written == [] and len(again.skipped) == 2
    assert (out / "a.parquet").stat().st_mtime_ns == stamp
    assert not [p for p in out.rglob(".*")]  # no temporary file left behind


@pytest.mark.slow
def test_model_loads_once_per_actor_and_batch_errors_surface_as_input_errors(ray_local, saved, tmp_path):
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    texts = TEXTS[:19] + [None]  # the 10th batch of 2 fails, after 9 good ones in the same actor
    ds = ray.data.from_arrow(pa.table({"text": texts}))
    ds = embed_dataset(ds, saved[0], udf=CountingEmbedBatch, batch_size=2, log_dir=str(tmp_path), threads=1)
    with pytest.raises(InputError, match="row 1 of the batch: column 'text' holds null, not a string"):
        ds.take_all()
    loads = (tmp_path / "loads").read_text().split()
    calls = (tmp_path / "calls").read_text().split()
    assert len(loads) == 1 and calls == loads * 10  # one actor, one load, ten batches


@pytest.mark.slow
def test_actor_pool_that_starves_reads_is_refused(ray_local, saved):
    ds = ray.data.from_items([{"text": "a"}])
    with pytest.raises(ConfigError, match="leave no CPU"):
        embed_dataset(ds, saved[0], num_actors=2, num_cpus=1)


# ---- without Ray's runtime --------------------------------------------------------------------------


def test_callable_pickles_small_without_its_model(saved):
    from ray import cloudpickle

    folder, emb = saved
    fn = EmbedBatch(folder, instruction="find it")
    first = fn(pa.table({"text": ["the cat"]}))
    loaded = fn.embedder
    fn(pa.table({"text": ["a dog runs", "blue sky"]}))
    assert fn.loads == 1 and fn.embedder is loaded  # kept between batches
    for dumps in (pickle.dumps, cloudpickle.dumps):
        blob = dumps(fn)
        assert len(blob) < 2000  # the spec only: the model would be megabytes
        copy = pickle.loads(blob)
        assert copy.spec == fn.spec and copy._embedder is None and copy.loads == 0
    again = copy(pa.table({"text": ["the cat"]}))
    np.testing.assert_allclose(again.column("embedding").to_pylist(), first.column("embedding").to_pylist(), atol=1e-6)
    want = emb.encode(["the cat"], instruction="find it")
    np.testing.assert_allclose(np.array(first.column("embedding").to_pylist()), want, atol=1e-5)


def test_numpy_and_pandas_batches(saved):
    folder, emb = saved
    fn = EmbedBatch(folder, column="body", output_column="vec")
    out = fn({"body": np.array(TEXTS[:3], dtype=object), "k": np.arange(3)})
    assert out["vec"].shape == (3, emb.embedding_dim) and list(out["k"]) == [0, 1, 2]
    np.testing.assert_allclose(out["vec"], emb.encode(TEXTS[:3]), atol=1e-5)
    df = fn(pa.table({"body": TEXTS[:3]}).to_pandas())
    np.testing.assert_allclose(np.stack(df["vec"]), out["vec"], atol=1e-6)


def test_bad_batches_name_the_row_or_column(saved):
    fn = EmbedBatch(saved[0])
    with pytest.raises(InputError, match="no column 'text' to embed; the columns are: body, id"):
        fn(pa.table({"body": ["x"], "id": [1]}))
    with pytest.raises(InputError, match="row 2 of the batch: column 'text' is empty"):
        fn(pa.table({"text": ["the cat", "a dog", "  "]}))
    with pytest.raises(InputError, match="row 1 of the batch: column 'text' holds a int"):
        fn({"text": np.array(["x", 3], dtype=object)})
    with pytest.raises(InputError, match="'embedding' already exists"):
        fn(pa.table({"text": ["x"], "embedding": [1]}))
    assert fn.loads == 0  # input errors are found before any model is loaded
    with pytest.raises(ConfigError, match="both 'text'"):
        EmbedBatch(saved[0], output_column="text")


def test_parquet_input_errors_name_file_and_row_before_ray_starts(saved, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"text": ["a", "b", "c", "d", "e", None, "g"]}), src / "p.parquet", row_group_size=2)
    with pytest.raises(InputError, match=r"p\.parquet: row 5 \(0-based\): column 'text' is null"):
        embed_parquet(src, tmp_path / "out", saved[0])
    pq.write_table(pa.table({"body": ["a"]}), src / "p.parquet")
    with pytest.raises(InputError, match="no column 'text' to embed; the columns are: body"):
        embed_parquet(src, tmp_path / "out", saved[0])
    pq.write_table(pa.table({"text": [1, 2]}), src / "p.parquet")
    with pytest.raises(InputError, match="column 'text' holds int64, not strings"):
        embed_parquet(src, tmp_path / "out", saved[0])
    with pytest.raises(InputError, match="inside the input folder"):
        embed_parquet(src, src / "out", saved[0])
    with pytest.raises(InputError, match="does not exist"):
        embed_parquet(tmp_path / "nope", tmp_path / "out", saved[0])


@pytest.mark.slow
def test_ray_is_optional_and_never_imported_by_dec2vec():
    code = (
        "import sys\n"
        "import dec2vec, dec2vec.io, dec2vec.embedder\n"
        "assert 'ray' not in sys.modules, 'importing dec2vec imported ray'\n"
        "sys.modules['ray'] = None\n"
        "try:\n"
        "    import dec2vec.integrations.ray\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'dec2vec[ray]'" in out.stdout
