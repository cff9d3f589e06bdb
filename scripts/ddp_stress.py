"""Stress check for clean distributed exits: the 2-process tiny run, repeated, must exit 0 every time.

A torchrun job that saves its model and then dies at interpreter exit (SIGABRT, "terminate called
without an active exception") looks failed to any scheduler. Teardown races are rare per run, so one
passing test proves little; this runs the same tiny 2-process training N times in a row (fresh output
folder each time, alternating a plain run and a ``--resume`` run) and reports every exit code.

    python scripts/ddp_stress.py --runs 30            # exits 1 if any run did not exit 0

Not part of ``make test``: 30 runs take about 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tiny model builders live with the tests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup(tmp: Path) -> Path:
    """Tiny backbone and encoder, 24 pairs and the torchrun test's config; returns the config path."""
    import yaml

    from tests.conftest import save_tiny_backbone, save_tiny_encoder
    from tests.unit.test_train_distributed import _train_config, _write_pairs

    backbone = save_tiny_backbone(tmp / "tiny-llama")
    encoder = save_tiny_encoder(tmp / "tiny-bert")
    data = _write_pairs(tmp / "pairs.jsonl")
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(_train_config(tmp, "run", backbone, encoder, data)))
    return path


def _run(config: Path, output_dir: Path, resume: bool, timeout: float) -> tuple[int, str]:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        "-m", "dec2vec.cli", "train", str(config), "--no-progress", "--set", f"output_dir={output_dir}",
    ]  # fmt: skip
    if resume:
        cmd.append("--resume")
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate()[0]
        return 124, out
    return proc.returncode, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per run before it counts as hung")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ddp-stress-") as d:
        tmp = Path(d)
        config = _setup(tmp)
        codes: list[int] = []
        t0 = time.perf_counter()
        for i in range(args.runs):
            out_dir = tmp / f"run-{i // 2}"
            resume = i % 2 == 1  # every second run resumes the previous one's finished output
            code, out = _run(config, out_dir, resume, args.timeout)
            codes.append(code)
            print(f"run {i + 1}/{args.runs}: exit {code}{' (--resume)' if resume else ''}", flush=True)
            if code != 0:
                print(out[-4000:], flush=True)
        ok = sum(c == 0 for c in codes)
        print(f"{ok} of {len(codes)} runs exited 0 in {time.perf_counter() - t0:.0f} s; exit codes: {codes}")
        return 0 if ok == len(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
