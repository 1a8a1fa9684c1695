"""tf_adapter.distribute.MultiWorkerMirroredStrategy: worker processes on
127.0.0.1 (ports picked at run time) train together through TensorFlow's gRPC
runtime and collectives, each contributing its NPUs, and reach what one
process computes at the same global batch. Every process is bounded in time."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import multiworker_job

JOB = os.path.join(os.path.dirname(__file__), "multiworker_job.py")
LIMIT = 240  # seconds any worker may take


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def launch(tmp_path, args, workers=2, npus_per_worker=1, extra=None, tag="run"):
    """Starts `workers` processes of multiworker_job.py; returns them with
    the paths of their result files."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(workers)]}
    procs = []
    for i in range(workers):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            TFA_NPU_COUNT=str(npus_per_worker),
            TFA_NPU_THREADS="1",
            TF_CPP_MIN_LOG_LEVEL="2",
        )
        out = tmp_path / f"{tag}-worker{i}.json"
        cmd = [sys.executable, JOB, "--out", str(out), "--timeout", "30"] + args + (extra or {}).get(i, [])
        procs.append((subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out))
    return procs


def finish(procs, limit=LIMIT):
    """(return code, output, result or None) per worker; kills what overruns."""
    results = []
    deadline = time.monotonic() + limit
    for proc, out in procs:
        try:
            text, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p, _ in procs:
                p.kill()
            text, _ = proc.communicate()
            pytest.fail(f"worker did not finish within {limit} s:\n{text[-3000:]}")
        result = json.loads(out.read_text()) if proc.returncode == 0 and out.exists() else None
        results.append((proc.returncode, text, result))
    return results


def _ok(results):
    for rc, text, result in results:
        assert rc == 0 and result is not None, text[-4000:]
    return [r for _, _, r in results]


@pytest.fixture(scope="module")
def one_npu():
    return tf.distribute.MirroredStrategy(devices=["/NPU:0"])


def _assert_same_training(result, reference, start=0):
    steps = sorted(int(k) for k in result["losses"])
    assert steps == list(range(start, len(reference["losses"])))
    np.testing.assert_allclose([result["losses"][str(s)] for s in steps],
                               [reference["losses"][s] for s in steps], rtol=1e-4)
    for a, b in zip(result["weights"], reference["weights"]):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("npus_per_worker", [1, 2])
def test_two_workers_custom_loop_match_one_process(tmp_path, one_npu, npus_per_worker):
    reference = multiworker_job.train(one_npu, 5)
    results = _ok(finish(launch(tmp_path, ["--steps", "5"], npus_per_worker=npus_per_worker)))
    for task, result in enumerate(results):
        assert result["replicas"] == 2 * npus_per_worker
        assert result["devices"] == [f"/job:worker/replica:0/task:{task}/device:NPU:{i}"
                                     for i in range(npus_per_worker)]
        _assert_same_training(result, reference)
    assert results[0]["weights"] == results[1]["weights"]


def test_two_workers_keras_fit_match_one_process(tmp_path, one_npu):
    reference = multiworker_job.fit(one_npu, 3)
    results = _ok(finish(launch(tmp_path, ["--fit", "--steps", "3"])))
    for result in results:
        _assert_same_training(result, reference)


def _lines(text):
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def test_killed_worker_makes_the_other_fail_in_bounded_time(tmp_path):
    procs = launch(tmp_path, ["--steps", "400"])
    victim = procs[1][0]
    # Kill worker 1 once it has trained two steps together with worker 0.
    seen = []
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        line = victim.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith('{"step": 1,'):
            break
    assert seen and seen[-1].startswith('{"step": 1,'), "".join(seen)[-3000:]
    victim.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    (rc0, text0, _), (rc1, _, _) = finish(procs, limit=120)
    waited = time.monotonic() - killed_at
    assert rc1 == -signal.SIGKILL
    assert rc0 != 0, text0[-3000:]
    assert waited < 90, f"worker 0 took {waited:.0f} s to fail"
    # TensorFlow's error names the failure of the collective and the peer.
    assert "UnavailableError" in text0 or "DeadlineExceededError" in text0, text0[-3000:]
    assert "Collective ops is aborted" in text0 or "task:1" in text0, text0[-3000:]
    trained = [d["step"] for d in _lines(text0) if "step" in d]
    assert trained and max(trained) < 399


def test_checkpoint_manager_resumes_after_restart(tmp_path, one_npu):
    reference = multiworker_job.train(one_npu, 6)
    ckpt = tmp_path / "ckpt"
    # Worker 1 dies before step 3; worker 0 fails in the collective.
    first = finish(launch(tmp_path, ["--steps", "6", "--checkpoint-dir", str(ckpt)],
                          extra={1: ["--die-at", "3"]}, tag="first"))
    assert first[1][0] == 3 and first[0][0] != 0
    assert tf.train.latest_checkpoint(str(ckpt))
    # Restarted, both resume at step 3 and end where an uninterrupted run ends.
    results = _ok(finish(launch(tmp_path, ["--steps", "6", "--checkpoint-dir", str(ckpt)], tag="second")))
    for result in results:
        assert result["start"] == 3
        _assert_same_training(result, reference, start=3)


def test_backup_and_restore_resumes_fit_after_restart(tmp_path, one_npu):
    reference = multiworker_job.fit(one_npu, 4)
    backup = tmp_path / "backup"
    first = finish(launch(tmp_path, ["--fit", "--steps", "4", "--checkpoint-dir", str(backup)],
                          extra={1: ["--die-at", "2"]}, tag="first"))
    assert first[1][0] == 3 and first[0][0] != 0
    results = _ok(finish(launch(tmp_path, ["--fit", "--steps", "4", "--checkpoint-dir", str(backup)], tag="second")))
    for result in results:
        # Keras reports only the epochs run after the restore.
        epochs = sorted(int(k) for k in result["losses"])
        assert len(epochs) == 2
        np.testing.assert_allclose([result["losses"][str(e)] for e in epochs],
                                   [reference["losses"][e] for e in (2, 3)], rtol=1e-4)
        for a, b in zip(result["weights"], reference["weights"]):
            np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-6)
