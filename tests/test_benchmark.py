"""The benchmark: its analytic FLOP count against the networks' real layers, and the script end to end."""

import json
import math
import os
import subprocess
import sys

import paddle
import pytest
from conftest import ROOT
from test_scripts import script

from infogan import THREAD_ENV
from infogan.benchmark import CONVOLUTIONS, D_HEAD, GENERATOR, LATENT, Q_HEAD, TRUNK, flops_per_image
from infogan.nets import Discriminator, Generator, QHead

paddle.enable_static()


def layer_flops(net, input_shape):
    """2 x weights x output positions for every FC and conv layer, read off the built network; a transposed
    convolution is counted at its input's positions (it runs the convolution it transposes)."""
    counted = []

    def hook(layer, inputs, output):
        weights = math.prod(layer.weight.shape)
        spatial = inputs[0] if isinstance(layer, paddle.nn.Conv2DTranspose) else output
        positions = spatial.shape[2] * spatial.shape[3] if len(spatial.shape) == 4 else 1
        counted.append(2 * weights * positions)

    with paddle.static.program_guard(paddle.static.Program(), paddle.static.Program()):
        for layer in net.sublayers():
            if isinstance(layer, (paddle.nn.Linear, paddle.nn.Conv2D, paddle.nn.Conv2DTranspose)):
                layer.register_forward_post_hook(hook)
        net(paddle.static.data("x", [None, *input_shape], "float32"))
    return counted


def test_flop_table_matches_the_networks():
    assert layer_flops(Generator(LATENT), [LATENT]) == [f for _, f in GENERATOR]
    assert layer_flops(Discriminator(), [1, 28, 28]) == [f for _, f in TRUNK + D_HEAD]
    assert layer_flops(QHead(12, 1024), [1024]) == [f for _, f in Q_HEAD]


def test_layer_table_has_the_networks_convolutions():
    """--layers times the shapes of CONVOLUTIONS and counts the FLOPs of the networks' table: they must agree."""
    for layer, operation, (channels, height, width), weight in CONVOLUTIONS:
        positions = height * width // 4 if operation == "conv" else height * width
        assert channels == weight[1] if operation == "conv" else channels == weight[0], layer
        assert 2 * math.prod(weight) * positions == dict(TRUNK + GENERATOR)[layer], layer


def test_iteration_flops_closed_form():
    fwd = lambda layers: sum(f for _, f in layers)  # noqa: E731
    g, d, q = fwd(GENERATOR), fwd(TRUNK + D_HEAD), fwd(Q_HEAD)
    first_g, first_d = GENERATOR[0][1], TRUNK[0][1]
    # G+Q step: forward through G, D and Q; backward: G's weights and inputs (not the latent's), D's inputs
    # only (its weights are fixed there), Q's weights and inputs.
    gq = g + d + q + (2 * g - first_g) + d + 2 * q
    # D step: real and fake batches, each forward and backward (weights, and inputs but the images').
    d_step = 2 * (d + 2 * d - first_d)
    assert flops_per_image() == {"gq_step": gq, "d_step": d_step, "iteration": gq + d_step}


def test_benchmark_script_prints_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--batch-sizes", "8", "--steps", "3", "--warmup", "1", "--rounds", "1", "--no-alternatives"]
    result = script("benchmark.py", *args, "--no-torch", "--layers", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "project defaults, batch 8" in result.stdout and "GFLOP/s" in result.stdout
    assert "conv2 forward+backward, Paddle" in result.stdout and "conv2 forward+backward, batched" in result.stdout
    results = json.loads(out.read_text())
    rows = {row["kind"]: row for row in results["rows"]}
    assert sorted(rows) == ["paddle", "paddle-layer", "reader"]
    layers = [row for row in results["rows"] if row["kind"] == "paddle-layer"]
    assert [row["layer"] for row in layers] == [
        layer for layer in ("conv1", "conv2", "deconv1", "deconv2") for _library in ("Paddle", "batched")
    ]
    assert all(row["ms_per_iteration"] > 0 and row["gflops"] > 0 for row in layers)
    row = rows["paddle"]
    assert row["batch"] == 8 and row["images_per_s"] > 0 and row["gflops"] > 0
    assert results["matmul_gflops"] > 1
    assert row["fraction_of_matmul"] == pytest.approx(row["gflops"] / results["matmul_gflops"])
    assert 0 < rows["reader"]["share_of_step"] < 0.05  # the reader is never the bottleneck


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "0"], "--batch-sizes must be whole numbers from 2"),
        (["--steps", "1"], "--steps must be a whole number from 3"),
        (["--rounds", "0"], "--rounds must be a whole number from 1"),
    ],
)
def test_benchmark_bad_input(args, message):
    result = script("benchmark.py", *args)
    assert result.returncode == 2 and result.stderr.strip().startswith("error: " + message), result.stderr


def env_after_import(**env):
    """os.environ's thread settings as a fresh process sees them after `import infogan`."""
    code = "import json, os, infogan; print(json.dumps({k: os.environ.get(k) for k in infogan.THREAD_ENV}))"
    base = {k: v for k, v in os.environ.items() if k not in THREAD_ENV and k != "INFOGAN_THREAD_ENV"}
    done = subprocess.run([sys.executable, "-c", code], env=base | env, cwd=ROOT, capture_output=True, text=True)
    return json.loads(done.stdout)


def test_thread_settings_are_set_before_paddle_and_yield_to_the_user():
    assert env_after_import() == THREAD_ENV
    assert env_after_import(MKL_NUM_THREADS="7")["MKL_NUM_THREADS"] == "7"
    assert set(env_after_import(INFOGAN_THREAD_ENV="0").values()) == {None}


@pytest.mark.parametrize("kind", ["paddle_one_program", "reader"])
def test_in_process_workers_run(kind):
    from infogan import bench_workers

    with paddle.static.scope_guard(paddle.static.Scope()):
        step = getattr(bench_workers, kind)({"batch": 8, "options": {}})
        times = bench_workers.seconds(step, 2, warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)


@pytest.mark.parametrize("option", ["separate_d_passes", "broadcast_bias", "adam_per_parameter"])
def test_the_step_as_it_was_still_runs_in_a_worker(option):
    from infogan.benchmark import Setting, _run_worker

    out = _run_worker(Setting(option, "paddle", 8, options={option: True}), steps=3, warmup=1)
    assert len(out.get("values", [])) == 3 and all(t > 0 for t in out["values"]), out


def test_each_round_starts_elsewhere_in_the_list(monkeypatch):
    from infogan import benchmark

    order = []

    def fake_worker(setting, steps, warmup):
        order.append(setting.name)
        return {"values": [1.0] * steps}

    monkeypatch.setattr(benchmark, "_run_worker", fake_worker)
    benchmark.run_benchmark(batch_sizes=(64,), steps=2, rounds=2, alternatives=False, torch_too=False)
    names = [s.name for s in benchmark.settings((64,), False, False)]
    assert order == names + names[len(names) // 2 :] + names[: len(names) // 2]


def test_the_step_with_the_clustering_term_runs_in_a_worker():
    from infogan.benchmark import Setting, _run_worker

    out = _run_worker(Setting("clustering", "paddle", 8, options={"clustering_term": True}), steps=3, warmup=1)
    assert len(out.get("values", [])) == 3 and all(t > 0 for t in out["values"]), out
