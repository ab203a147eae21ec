"""The trained model anywhere: exported inference models that run with paddle and numpy alone, the Python
API, and the explorer's server, in a real browser."""

import fnmatch
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import matplotlib.pyplot as plt
import numpy as np
import paddle
import pytest
from conftest import ROOT, copy_run, log_records, one_error_line, script
from PIL import Image

import infogan
from infogan import InfoGANError
from infogan.data import mnist
from infogan.nets import AVERAGE

pytestmark = pytest.mark.slow

STANDALONE = """
import json, sys
import numpy as np
import paddle.inference as inference

folder, inputs, outputs = sys.argv[1:4]
description = json.load(open(folder + "/latent.json"))
feeds = dict(np.load(inputs))
results = {}
for role in ("generator", "encoder"):
    model = description[role]
    config = inference.Config(folder + "/" + model["model"], folder + "/" + model["params"])
    config.disable_onednn()
    predictor = inference.create_predictor(config)
    for name in predictor.get_input_names():
        predictor.get_input_handle(name).reshape(feeds[name].shape)
        predictor.get_input_handle(name).copy_from_cpu(feeds[name])
    predictor.run()
    for name, role_output in zip(predictor.get_output_names(), model["outputs"]):
        results[role_output] = predictor.get_output_handle(name).copy_to_cpu()
np.savez(outputs, **results)
assert not any(m.startswith("infogan") for m in sys.modules), "the exported model needed this project"
"""


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export") / "export")
    result = script("export.py", tiny_run, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_the_export_runs_with_paddle_and_numpy_alone_and_matches_the_runs_own_programs(
    tiny_run, exported, tiny_mnist, tmp_path
):
    description = json.load(open(os.path.join(exported, "latent.json")))
    assert description["image"] == {"shape": [1, 28, 28], "value_range": [0.0, 1.0]}
    assert [c["values"] for c in description["categorical"]] == [10] and description["continuous"]["count"] == 2
    assert description["generator"]["inputs"] == ["z", "c_cat", "c_cont"]
    for role in ("generator", "encoder"):
        program = open(os.path.join(exported, f"{role}.json")).read()
        assert "conv2d" in program and "custom_op" not in program, f"the exported {role} needs this project's operators"
    model = infogan.load(tiny_run)  # the run's own inference programs, with this project's CPU kernels
    latent = model.latent(categorical=np.arange(6)[:, None] % 10, continuous=[[0.5, -1.5]], seed=3)
    digits = mnist.load("mnist", tiny_mnist).val_images[:6].astype("float32") / 255.0
    np.savez(tmp_path / "inputs.npz", images=digits, **latent)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", STANDALONE, exported, str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
        capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = np.load(tmp_path / "out.npz")
    with model._lock:
        own_images = model.backend.generate(latent)
        own_codes = model.backend.encode(digits)
    np.testing.assert_allclose(out["images"], own_images, atol=1e-5)
    np.testing.assert_allclose(out["cat_probs"], own_codes["cat_probs"], atol=1e-5)
    np.testing.assert_allclose(out["cont_mean"], own_codes["cont_mean"], atol=1e-5)


def test_the_api_loads_runs_and_exports_alike_and_keeps_models_apart(tiny_run, exported, tmp_path):
    paddle.disable_static()
    try:
        _api_checks(tiny_run, exported, tmp_path)
    finally:
        paddle.enable_static()  # the other tests build Programs


def _api_checks(tiny_run, exported, tmp_path):
    run, export = infogan.load(tiny_run), infogan.load(exported)
    assert paddle.in_dynamic_mode(), "loading a model switched Paddle's global mode"
    images = run.generate(categorical=[3], continuous=[0.5, -1.0], seed=0)
    assert images.shape == (1, 1, 28, 28) and 0 <= images.min() and images.max() <= 1
    np.testing.assert_allclose(export.generate(categorical=[3], continuous=[0.5, -1.0], seed=0), images, atol=1e-5)
    np.testing.assert_array_equal(run.generate(categorical=[3], continuous=[0.5, -1.0], seed=0), images)  # repeatable
    assert not np.array_equal(run.generate(categorical=[4], continuous=[0.5, -1.0], seed=0), images)
    codes = run.encode(images)
    assert codes["categorical"][0].shape == (1, 10) and codes["continuous"].shape == (1, 2)
    np.testing.assert_allclose(codes["categorical"][0].sum(), 1.0, rtol=1e-5)
    grid = run.traverse("cont1", steps=5, rows=2)
    assert grid.shape == (2 * 29 - 1, 5 * 29 - 1)  # grey: as Pillow and plt.imsave take it, not [H, W, 1]
    assert run.traverse("cat1", rows=1).shape == (28, 10 * 29 - 1)
    plt.imsave(tmp_path / "grid.png", grid, cmap="gray")
    Image.fromarray(np.rint(grid * 255).astype(np.uint8)).save(tmp_path / "grid_pillow.png")
    # A second run in the same process keeps its own parameters: the first model's images do not move.
    second = infogan.load(copy_run(tiny_run, tmp_path / "other"))
    second.backend.scope.find_var(AVERAGE + "G_deconv2.b").get_tensor().set(
        np.full([1], 0.7, "float32"), paddle.CPUPlace()
    )
    assert not np.allclose(second.generate(categorical=[3], continuous=[0.5, -1.0], seed=0), images)
    np.testing.assert_array_equal(run.generate(categorical=[3], continuous=[0.5, -1.0], seed=0), images)


def test_the_api_runs_g_and_q_on_a_batch_at_a_time_with_the_same_answers(tiny_run, exported, monkeypatch):
    """Run at once, N images took memory in proportion (7 GB for 20,000, so about 20 GB for a notebook's
    encode of MNIST's training split); each call runs BATCH of them at a time now."""
    import infogan.api

    for model in (infogan.load(tiny_run), infogan.load(exported)):
        images = model.generate(n=7, seed=1)
        codes = model.encode(images)
        steps = model.sweep("cont1", steps=7, seed=2)
        rows = []
        for role in ("generate", "encode"):
            run = getattr(model.backend, role)
            feed_rows = (lambda feed: len(feed["z"])) if role == "generate" else len
            monkeypatch.setattr(
                model.backend, role, lambda feed, run=run, n=feed_rows, rows=rows: rows.append(n(feed)) or run(feed)
            )
        monkeypatch.setattr(infogan.api, "BATCH", 3)
        np.testing.assert_allclose(model.generate(n=7, seed=1), images, atol=1e-6)
        batched = model.encode(images)
        np.testing.assert_allclose(batched["categorical"][0], codes["categorical"][0], atol=1e-6)
        np.testing.assert_allclose(batched["continuous"], codes["continuous"], atol=1e-6)
        np.testing.assert_allclose(model.sweep("cont1", steps=7, seed=2), steps, atol=1e-6)
        assert rows == [3, 3, 1] * 3
        monkeypatch.undo()


QUIET_LOAD = """
import os, sys
{first}
import infogan
model = infogan.load(sys.argv[1])
model.encode(model.generate(n=2, seed=0))
print(os.environ.get("MKL_NUM_THREADS"), os.environ.get("GLOG_minloglevel"))
"""


def test_loading_a_model_in_a_fresh_process_says_nothing_and_sets_threads_only_before_paddle(tiny_run):
    """In a notebook, infogan.load printed Paddle's ccache warning and its C++ log lines, and ran G and Q
    without the scripts' thread settings (1.4 times slower)."""
    from infogan.device import thread_settings

    unset = {*thread_settings(), "INFOGAN_THREAD_ENV", "OMP_NUM_THREADS"}  # a user's own would stay, and say so
    env = {k: v for k, v in os.environ.items() if k not in unset}
    for first, expected in (("", f"{thread_settings()['MKL_NUM_THREADS']} 2"), ("import paddle", "None None")):
        code = QUIET_LOAD.format(first=first)
        done = subprocess.run(
            [sys.executable, "-c", code, tiny_run], capture_output=True, text=True, env=env, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected, "thread settings applied only where Paddle was not yet imported"
        if not first:
            assert done.stderr == "", done.stderr


API_TRAIN = """
import json, sys
import infogan
data, run_dir = sys.argv[1:]
try:
    infogan.train(data_dir=data, iterations="3")
except infogan.InfoGANError as e:
    print(json.dumps([str(e), "paddle" in sys.modules]))
for mistaken in (dict(lr=1e-3), dict(resume=data, lr=1e-3)):
    try:
        infogan.train(**mistaken)
    except infogan.InfoGANError as e:
        print(json.dumps([str(e), "paddle" in sys.modules]))
tiny = dict(batch_size=8, log_every=1, grid_every=3, checkpoint_every=3)
run = infogan.train(data_dir=data, run_dir=run_dir, iterations=3, **tiny)
assert infogan.train(resume=run, iterations=4) == run
metrics = infogan.evaluate(run, sample_quality=False)
import paddle
assert paddle.in_dynamic_mode() and paddle.static.global_scope().find_var("Q_out.w") is None  # as they were
with open(run + "/metrics.json") as f:
    assert json.load(f) == json.loads(json.dumps(metrics))
print(json.dumps([run, metrics["checkpoint"], list(infogan.load(run).generate(n=2, seed=0).shape)]))
"""


def test_training_and_evaluating_from_python_as_the_scripts_do_quietly(tiny_mnist, tmp_path):
    """infogan.train(**settings) in a notebook: a mistake refused before Paddle's import, a new run and its
    resume, then infogan.evaluate and infogan.load; without Paddle's log lines and warnings."""
    run_dir = str(tmp_path / "run")
    done = subprocess.run(
        [sys.executable, "-c", API_TRAIN, tiny_mnist, run_dir], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    refused, trained = [json.loads(line) for line in lines[:3]], json.loads(lines[-1])
    assert refused == [
        ["--iterations must be a whole number from 1 to 1000000000, not '3'", False],
        *[
            [
                "unknown settings ['lr']; for lr, lr_g or lr_d? (the settings are scripts/train.py's flags, _ for -: "
                "its --help)",
                False,
            ]
        ]
        * 2,
    ]
    assert trained == [run_dir, "step_0000004", [2, 1, 28, 28]]
    assert any(line.startswith("accuracy ") for line in lines[3:-1])  # the table, as evaluate.py prints it
    with open(os.path.join(run_dir, "log.jsonl")) as f:
        assert [json.loads(line)["step"] for line in f] == [1, 2, 3, 4]
    assert "done in" in done.stderr and not any(
        noise in done.stderr for noise in ("New Executor", "Warning", "ccache", "W1", "I1")
    ), done.stderr


def test_training_in_a_thread_other_than_the_main_one(tiny_mnist, tmp_path):
    """A notebook's background job: installing signal handlers there raised ValueError after the run
    directory was written. Signals are the main thread's: the run trains to its end."""
    run_dir, done = str(tmp_path / "run"), {}

    def work():
        done["run"] = infogan.train(data_dir=tiny_mnist, run_dir=run_dir, iterations=2, batch_size=8, log_every=1)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=300)
    assert done.get("run") == run_dir
    assert [r["step"] for r in log_records(run_dir)] == [1, 2] and os.listdir(os.path.join(run_dir, "checkpoints"))


def test_a_trainings_and_a_models_tensors_are_freed_when_they_are_done_with(
    tiny_mnist, tiny_run, tmp_path, monkeypatch
):
    """Paddle keeps every scope made from Python, tensors and all, until the process ends: each MNIST training
    in a notebook kept 250 MB more, until its scope was emptied on the way out; a model, until collected."""
    from infogan import trainer

    scopes, train = [], trainer.new_run

    def new_run(*args, **kwargs):
        run_dir = train(*args, **kwargs)
        scopes.append(paddle.static.global_scope())
        assert "G_fc1.w" in scopes[-1].local_var_names()  # the run's, in the scope infogan.train made for it
        return run_dir

    monkeypatch.setattr(trainer, "new_run", new_run)
    infogan.train(data_dir=tiny_mnist, run_dir=str(tmp_path / "run"), iterations=2, batch_size=8)
    assert scopes and scopes[0].local_var_names() == []
    model = infogan.load(tiny_run)
    scope = model.backend.scope
    assert model.generate(n=1, seed=0).shape == (1, 1, 28, 28) and scope.local_var_names()
    del model
    gc.collect()
    assert scope.local_var_names() == []


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.generate(categorical=[10]), "categorical code 1 takes values 0 to 9"),
        (lambda m: m.generate(continuous=[0.5]), "continuous needs 2 value"),
        (lambda m: m.generate(noise=np.zeros(3)), "noise needs 62 value"),
        (lambda m: m.generate(continuous=[np.nan, 0]), "must be finite"),
        (lambda m: m.encode(np.zeros((2, 3, 28, 28))), r"images must be \[N, 1, 28, 28\]"),
        (lambda m: m.encode(np.zeros((2, 28, 28, 1))), r"not \[2, 28, 28, 1\]: channels first, as images.transpose"),
        (lambda m: m.traverse("cont3"), "unknown code 'cont3'"),
        (lambda m: m.generate(categorical=[3.5]), "categorical values must be whole numbers"),
        (lambda m: m.generate(categorical=["three"]), "categorical must be numbers"),
        (lambda m: m.generate(categorical=np.zeros((0, 1))), "categorical must be one value per code, or one row"),
        (lambda m: m.generate(seed=-1), r"seed must be a whole number from 0 up \(or None\), not -1"),
        (lambda m: m.generate(n=0), "n must be a whole number from 1 up"),
        (lambda m: m.encode(np.full((2, 1, 28, 28), 255, np.uint8)), r"in \[0, 1\], not \[255, 255\]: divide 8-bit"),
        (lambda m: m.encode(np.full((2, 1, 28, 28), np.nan)), "images must be finite numbers"),
        (lambda m: m.encode(np.zeros((0, 1, 28, 28))), r"images must be \[N, 1, 28, 28\], not \[0, 1, 28, 28\]"),
        (lambda m: m.traverse("cont1", steps=0), "steps must be a whole number from 2 up, not 0"),
        (lambda m: m.traverse("cont1", span=float("inf")), "span must be a finite number above 0"),
        (lambda m: m.traverse("cat1", rows=0), "rows must be a whole number from 1 up, not 0"),
        (lambda m: infogan.load(m.path, device="cuda"), "device must be one of auto, cpu, gpu, not 'cuda'"),
    ],
)
def test_the_api_refuses_bad_input(tiny_run, call, message):
    with pytest.raises(InfoGANError, match=message):
        call(infogan.load(tiny_run))


def test_export_refusals_and_a_run_without_checkpoints(tiny_run, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep")
    one_error_line(script("export.py", tiny_run, "--out", str(tmp_path / "mine")), f"--out {tmp_path / 'mine'} exists")
    one_error_line(script("export.py", str(tmp_path)), f"{tmp_path} has no config.json")


def test_a_damaged_export_is_one_line_naming_the_file(exported, tmp_path):
    """An export copied in part, cut short or edited by hand: which file, and to export again."""
    damages = {
        "latent.json": ("cut", "latent.json cannot be read"),
        "generator.json": ("gone", "generator.json is missing"),
        "encoder.pdiparams": ("cut", "encoder.pdiparams .* is damaged"),
    }
    for name, (damage, message) in damages.items():
        folder = tmp_path / name
        shutil.copytree(exported, folder)
        whole = (folder / name).read_bytes()
        (folder / name).unlink() if damage == "gone" else (folder / name).write_bytes(whole[: len(whole) // 2])
        with pytest.raises(InfoGANError, match=f"{message}.*: export the run again"):
            infogan.load(str(folder))
    one_error_line(script("explore.py", str(tmp_path / "latent.json")), f"{tmp_path}/latent.json/latent.json cannot")
    one_error_line(script("sample.py", exported), f"{exported} is an export (scripts/export.py), not a run directory")


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_explorer_answers_bad_requests_with_400_and_serves_tabs_at_once(tiny_run):
    from infogan.explorer import serve_in_background

    server = serve_in_background(infogan.load(tiny_run))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        status, body = get(base + "/api/spec")
        assert status == 200 and json.loads(body)["categorical"] == [10]
        for query, message in [
            ("cat=10&cont=0,0", b"cat1=10 is out of range"),
            ("cat=1&cont=0,3", b"cont2=3.0 is out of range"),
            ("cat=1&cont=0", b"cont needs 2 value"),
            ("cat=one&cont=0,0", b"is not 1 int value"),
            ("cat=1&cont=0,0&colour=red", b"unknown parameters ['colour']"),
            ("cat=1&cont=0,0&seed=-1", b"seed=-1 is out of range"),
            ("a&&b==", b"malformed query"),
        ]:
            status, body = get(f"{base}/api/image?{query}")
            assert status == 400 and message in body, (query, body)
        assert get(f"{base}/api/sweep?code=cat2&cat=1&cont=0,0")[0] == 400
        results = []
        urls = [f"{base}/api/sweep?code=cont1&cat={s}&cont=0,0&seed={s}" for s in range(8)]
        threads = [threading.Thread(target=lambda u=u: results.append(get(u))) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [status for status, _ in results] == [200] * 8 and all(body[:4] == b"\x89PNG" for _, body in results)
    finally:
        server.shutdown()


def test_explore_serves_until_ctrl_c_and_refuses_a_taken_port_or_a_host_not_of_this_machine(tiny_run):
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", 0))
            host = "::1"
        except OSError:  # a machine without IPv6
            host = "127.0.0.1"
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "explore.py"), tiny_run, "--port", "0", "--host", host]
    serving = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        line = serving.stdout.readline()
        assert line.startswith(f"serving {tiny_run} at http://"), (line, serving.stderr.read())
        url = line.split(" at ")[1].split()[0]
        status, body = get(url + "api/spec")
        assert status == 200 and json.loads(body)["continuous"] == 2
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            one_error_line(
                script("explore.py", tiny_run, "--port", str(port)),
                f"cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port",
            )
        one_error_line(
            script("explore.py", tiny_run, "--host", "192.0.2.1"),  # TEST-NET-1: an address of no machine here
            "cannot listen on 192.0.2.1:8000: Cannot assign requested address; give --host an address of this machine",
        )
    finally:
        serving.send_signal(signal.SIGINT)
        out, err = serving.communicate(timeout=60)
    assert serving.returncode == 0 and out.endswith("stopped\n"), (serving.returncode, out, err)


def test_a_wheel_ships_every_file_the_package_reads():
    """`pip install .` (no -e) copies into site-packages only the Python files and what pyproject.toml's
    package-data names: every other file of the package must match one of its patterns, or the installed
    explorer has no page and the operators no source."""
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["infogan"]
    package = os.path.join(ROOT, "infogan")
    data = [
        os.path.relpath(os.path.join(folder, name), package)
        for folder, _, names in os.walk(package)
        if "__pycache__" not in folder
        for name in names
        if not name.endswith(".py")
    ]
    assert "explorer.html" in data
    assert [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None
    return path


@pytest.mark.skipif(chromium() is None, reason="needs Chromium (apt-get install chromium) and playwright (pip)")
def test_the_explorer_in_a_real_browser_shows_what_the_model_generates(tiny_run, tmp_path):
    from playwright.sync_api import sync_playwright

    from infogan.explorer import serve_in_background

    model = infogan.load(tiny_run)
    server = serve_in_background(model)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium(), args=flags)
            page = browser.new_page()
            errors = []  # the page's own, and any request it makes that fails (as a missing favicon)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_function("document.getElementById('image').dataset.query !== undefined")
            first = shown(page)
            lefts = controls_left(page)
            page.locator("#cont1").fill("1.5")
            page.wait_for_function("document.getElementById('image').dataset.query.includes('cont=1.50,0.00')")
            page.select_option("#cat1", "3")
            page.wait_for_function("document.getElementById('image').dataset.query.includes('cat=3&')")
            page.wait_for_function("document.getElementById('image').complete")
            after = shown(page)
            assert controls_left(page) == lefts and len(set(lefts)) == 1, "the controls moved or are not aligned"
            page.screenshot(path=str(tmp_path / "explorer.png"))
            browser.close()
    finally:
        server.shutdown()
    expected = np.rint(model.generate(categorical=[3], continuous=[1.5, 0.0], seed=0)[0, 0] * 255).astype(int)
    np.testing.assert_array_equal(after, expected)
    assert not np.array_equal(first, after)
    assert errors == []
    assert os.path.getsize(tmp_path / "explorer.png") > 5_000


def controls_left(page):
    """Where each code's selector or slider starts, in pixels from the left."""
    return [page.locator(f"#{code}").bounding_box()["x"] for code in ("cat1", "cont1", "cont2")]


def shown(page):
    """The pixels the page shows in #image, at their natural size (grey: one channel)."""
    pixels = page.evaluate(
        """() => {
            const img = document.getElementById('image');
            const canvas = document.createElement('canvas');
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const context = canvas.getContext('2d');
            context.drawImage(img, 0, 0);
            return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data);
        }"""
    )
    return np.array(pixels).reshape(28, 28, 4)[..., 0]
