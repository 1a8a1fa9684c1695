"""benches/suite.py keeps working: its option checks, and one tiny benchmark
end to end (table and JSON). Speed itself is never asserted here."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUITE = os.path.join(ROOT, "benches", "suite.py")


def run(*args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, SUITE, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_list_names_every_benchmark():
    p = run("--list")
    assert p.returncode == 0, p.stderr
    keys = [line.split()[0] for line in p.stdout.splitlines() if line.strip()]
    for key in ("resnet50_b32", "mobilenetv2_b32", "efficientnetb0_b32", "bert_b32", "resnet50_b1",
                "resnet50_train_b32", "resnet50_bf16_b32", "resnet50_bf16_train_b32"):
        assert key in keys


def test_unknown_benchmark_is_a_usage_error():
    p = run("--only", "resnet50_b32,nope")
    assert p.returncode == 2
    assert "nope" in p.stderr


@pytest.mark.parametrize("key", ["resnet50_b1"])
def test_one_benchmark_writes_table_and_json(tmp_path, key):
    out = tmp_path / "r.json"
    p = run("--only", key, "--iters", "1", "--latency-iters", "2", "--warmup", "0", "--image-size", "32",
            "--json", str(out))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    assert "ratio" in p.stdout and "target" in p.stdout
    data = json.loads(out.read_text())
    assert data["machine"]["bf16_class"] in ("amx", "avx512_bf16", "none")
    assert (data["machine"]["iters"], data["machine"]["latency_iters"]) == (1, 2)
    (row,) = data["rows"]
    assert row["key"] == key and row["npu"] > 0 and row["tf"] > 0
    assert row["ratio"] == pytest.approx(row["tf"] / row["npu"], rel=0.02)  # ms: lower is faster
    assert float(row["accuracy"].split()[-1]) < 1e-4  # max rel diff vs TF CPU
