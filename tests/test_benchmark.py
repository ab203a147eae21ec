"""The benchmarks: the training step's FLOPs read off the networks against their closed forms, its alternatives
built from explicit options, its round-robin order, and the script end to end; the decoding and memory benchmarks."""

import json

import paddle
import pytest
from conftest import one_error_line, script

from benchmarks import flops, train_step, workers
from infogan.config import TrainConfig
from infogan.nets import NetSpec

paddle.enable_static()
LATENT = 74
MNIST = NetSpec("mnist", (1, 28, 28), LATENT, 12)
# The paper's MNIST networks, by hand: 2 x weights x output positions (a deconvolution: input positions).
G = [2 * LATENT * 1024, 2 * 1024 * 6272, 2 * 128 * 64 * 16 * 49, 2 * 64 * 1 * 16 * 196]
TRUNK = [2 * 1 * 64 * 16 * 196, 2 * 64 * 128 * 16 * 49, 2 * 6272 * 1024]
HEAD = [2 * 1024]
Q = [2 * 1024 * 128, 2 * 128 * 12]


def test_flops_are_read_off_the_networks():
    disc = MNIST.discriminator()
    assert [layer.flops for layer in flops.layers(MNIST.generator(), [LATENT])] == G
    assert [layer.flops for layer in flops.layers(disc, [1, 28, 28], disc.trunk)] == TRUNK
    assert [layer.flops for layer in flops.layers(disc.head, [1024])] == HEAD
    assert [layer.flops for layer in flops.layers(MNIST.q_head(1024), [1024])] == Q


def test_the_flops_command_prints_each_layer_and_step_of_a_configuration():
    """docs/performance.md names `python -m benchmarks.flops`, which printed nothing."""
    result = script("benchmarks.flops", "--lambda-real", "0")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(",")[0] for line in lines[:4]] == ["G", "D's trunk", "D's head", "Q"]
    steps = flops.iteration_flops(TrainConfig(lambda_real=0.0))
    assert f"D step {steps['d_step'] / 1e6:.1f}, iteration {steps['iteration'] / 1e6:.1f}" in lines[4]
    one_error_line(script("benchmarks.flops", "--batch-size", "0"), "--batch-size must be a whole number")


def test_iteration_flops_closed_form():
    g, d, q = sum(G), sum(TRUNK + HEAD), sum(Q)
    # G+Q step: forward through G, D and Q; backward: G's weights and inputs (not the latent's), D's inputs
    # only (its weights are fixed there), Q's weights and inputs.
    gq = g + d + q + (2 * g - G[0]) + d + 2 * q
    # D step: real and fake batches, each forward and backward (weights, and inputs but the images'); Q's
    # forward on the real batch, for its statistics.
    d_step = 2 * (d + 2 * d - TRUNK[0]) + q
    assert flops.iteration_flops(TrainConfig(lambda_real=0.0)) == {
        "gq_step": gq,
        "d_step": d_step,
        "iteration": gq + d_step,
    }
    # The clustering term: two views more through D and back, Q forward and back on the real batch and views.
    with_term = flops.iteration_flops(TrainConfig())["d_step"]
    assert with_term == 4 * (d + 2 * d - TRUNK[0]) + 3 * q + 3 * 2 * q
    # Q reading moved fakes: the trunk and Q forward again, back through the trunk's inputs, Q's weights and inputs.
    views = flops.iteration_flops(TrainConfig(lambda_real=0.0, li_views=True))["gq_step"]
    trunk = sum(TRUNK)
    assert views == gq + trunk + q + trunk + 2 * q


@pytest.mark.parametrize(
    "compute", [{"stacked_d": False}, {"expanded_bias": False}, {"multi_tensor_adam": False}, {"batched_conv": False}]
)
def test_each_alternative_is_the_training_step_with_an_explicit_option(compute):
    job = {"kind": "train", "batch": 8, "config": {}, "compute": compute}
    with paddle.static.scope_guard(paddle.static.Scope()):
        step = workers.train(job)
        times = workers.seconds(step, 2, warmup=0)
    assert len(times) == 2 and all(t > 0 for t in times)


@pytest.mark.parametrize("batched", [False, True])
def test_each_convolution_alone_runs_with_either_kernel_and_is_listed(batched):
    for name, *_ in workers.CONVOLUTIONS:
        with paddle.static.scope_guard(paddle.static.Scope()):
            call = workers.layer({"batch": 4, "layer": name, "batched": batched})
            assert len(workers.seconds(call, 1, warmup=0)) == 1
    rows = [s.name for s in train_step.settings((8,), False, False, layers=True) if s.kind == "layer"]
    assert rows == [f"{n} forward+backward, {lib}" for n, *_ in workers.CONVOLUTIONS for lib in ("Paddle", "batched")]


@pytest.mark.parametrize("kind", ["one_program", "reader"])
def test_in_process_workers_run(kind):
    with paddle.static.scope_guard(paddle.static.Scope()):
        step = getattr(workers, kind)({"batch": 8, "config": {"lambda_real": 0.0}, "compute": {}})
        times = workers.seconds(step, 2, warmup=1)
    assert len(times) == 2 and all(t > 0 for t in times)


def test_each_round_starts_elsewhere_in_the_list(monkeypatch):
    order = []

    def fake_worker(setting, steps, warmup):
        order.append(setting.name)
        return {"values": [1.0] * steps}

    monkeypatch.setattr(train_step, "run_worker", fake_worker)
    monkeypatch.setattr(train_step, "summarise", lambda todo, timings, failures: None)
    train_step.run_benchmark(batch_sizes=(64,), steps=2, rounds=2, alternatives=False, torch_too=False)
    names = [s.name for s in train_step.settings((64,), False, False)]
    assert order == names + names[len(names) // 2 :] + names[: len(names) // 2]


@pytest.mark.slow
def test_benchmark_script_prints_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--batch-sizes", "8", "--steps", "3", "--warmup", "0", "--rounds", "1", "--no-alternatives"]
    result = script("benchmarks.train_step", *args, "--no-torch", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "training defaults, batch 8" in result.stdout and "GFLOP/s" in result.stdout
    results = json.loads(out.read_text())
    rows = {row["setting"]: row for row in results["rows"]}
    assert set(rows) >= {
        "training defaults, batch 8",
        "the paper, batch 8",
        "data reader + latent codes + views, batch 8",
    }
    row = rows["training defaults, batch 8"]
    assert row["images_per_s"] > 0 and row["gflops"] > 0 and row["vs_baseline"] == 1.0
    assert row["fraction_of_matmul"] == pytest.approx(row["gflops"] / results["matmul_gflops"])
    assert results["flops_per_image"]["defaults"] == flops.iteration_flops(TrainConfig())
    assert rows["data reader + latent codes + views, batch 8"]["share_of_step"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-sizes", "0"], "--batch-sizes must be whole numbers from 2"),
        (["--steps", "1"], "--steps must be a whole number from 3"),
        (["--rounds", "0"], "--rounds must be a whole number from 1"),
        (["--rounds", "x"], "argument --rounds: invalid int value"),
    ],
)
def test_benchmark_bad_input(args, message):
    one_error_line(script("benchmarks.train_step", *args), message)


@pytest.mark.parametrize("args", [["--help"], [], ["[1]"]])
def test_the_internal_worker_run_by_hand_says_what_to_run(args):
    one_error_line(script("benchmarks.workers", *args), "benchmarks.workers runs a job (JSON) of benchmarks.train_step")


def test_decode_benchmark_prints_both_ways_side_by_side():
    result = script("benchmarks.decode", "--width", "640", "--height", "480", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["640x480 to 32x32", "640x480 to 64x64"]
    assert all("reduced" in line and "full" in line and "largest pixel difference" in line for line in lines)
    one_error_line(script("benchmarks.decode", "--width", "10"), "--width and --height must be at least 64")


def test_memory_benchmark_prints_the_resident_size_after_each_call(tiny_mnist):
    result = script("benchmarks.memory", "--runs", "2", "--data-dir", tiny_mnist)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    calls = ["trained run 1", "trained run 2", "loaded model 1", "loaded model 2", "evaluated run 1", "evaluated run 2"]
    assert [line.split(":")[0] for line in lines] == calls
    assert all(0 < float(line.split(":")[1].removesuffix(" MB")) < 24 * 1024 for line in lines)
    one_error_line(script("benchmarks.memory", "--runs", "1"), "--runs must be at least 2")
