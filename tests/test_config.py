"""Settings: one definition (the dataclass) behind the flags, presets under the flags, config.json both ways,
and no side effects from importing the package."""

import dataclasses
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from infogan import InfoGANError, cli
from infogan.config import PRESETS, TrainConfig, read_config


def parse(*argv):
    parser = cli.Parser("test")
    cli.add_config_flags(parser)
    return {k: v for k, v in vars(parser.parse_args(list(argv))).items() if k != "debug"}


def test_every_setting_is_a_flag_with_its_help_and_default():
    parser = cli.Parser("test")
    cli.add_config_flags(parser)
    text = parser.format_help()
    for f in dataclasses.fields(TrainConfig):
        option = "--" + f.name.replace("_", "-")
        assert option in text, option
        assert f.metadata["help"].split()[0] in text
    assert "(default 64)" in text and "(default 2e-4)" not in text  # defaults shown as the dataclass holds them
    assert "(default 0.0002)" in text
    seed = text.split("--seed SEED")[-1].split("--device")[0]  # its entry under options
    assert "(default 0)" in " ".join(seed.split())  # a default of 0 is shown too, not taken for none


def test_only_the_flags_given_reach_the_settings():
    assert parse() == {}
    assert parse("--batch-size", "32", "--categorical", "10", "10", "--no-fallback") == {
        "batch_size": 32,
        "categorical": [10, 10],
        "no_fallback": True,
    }
    assert parse("--categorical") == {"categorical": []}


def test_presets_sit_between_the_defaults_and_the_flags():
    assert TrainConfig.from_flags({}) == TrainConfig()
    svhn = TrainConfig.from_flags({"dataset": "svhn"})
    assert (svhn.arch, svhn.noise_dim, svhn.categorical, svhn.continuous) == ("svhn", 124, [10] * 4, 4)
    assert (svhn.init, svhn.bias_init, svhn.lr_g, svhn.iterations) == ("normal", "uniform", 2e-4, 5000)
    assert TrainConfig().bias_init == "zero"
    assert TrainConfig.from_flags({"dataset": "svhn", "continuous": 2}).continuous == 2  # the flag wins
    paper = TrainConfig.from_flags({"preset": "paper"})
    assert (paper.batch_size, paper.iterations, paper.q_step, paper.leak, paper.li_warmup) == (128, 5000, "d", 0.01, 0)
    assert paper.preset == "paper" and paper.lambda_real == 0
    # The neighbour views are the clustering term's: where a preset or a flag turns the term off, they go with it.
    assert TrainConfig().neighbours == 3
    assert paper.neighbours == svhn.neighbours == TrainConfig.from_flags({"lambda_real": 0.0}).neighbours == 0
    assert TrainConfig.from_flags({"lambda_real": 1.5}).neighbours == 3
    # The long MNIST preset is the three flags docs/results.md measured, and the defaults otherwise.
    long = TrainConfig.from_flags({"preset": "mnist-long"})
    flags = TrainConfig.from_flags({"lr_d": 1e-3, "iterations": 9000, "lr_decay": "cosine"})
    assert long == dataclasses.replace(flags, preset="mnist-long") and long != TrainConfig()
    by_epochs = TrainConfig.from_flags({"preset": "paper", "epochs": 3})
    assert by_epochs.iterations is None and by_epochs.total_iterations(1280) == 30  # --epochs beats the preset's count
    for name, values in PRESETS.items():
        assert "dataset" not in values, name
        assert set(values) <= {f.name for f in dataclasses.fields(TrainConfig)}, name


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"preset": "cifar"}, "--preset 'cifar' is not known"),
        ({"dataset": "cifar"}, "--dataset 'cifar' is not known"),
        ({"categorical": [], "continuous": 0}, "no code at all"),
        ({"categorical": [1]}, "--categorical must be a whole number from 2"),
        ({"dataset": "mnist", "channels": 3}, "--channels 3: mnist images have channels 1"),
        ({"dataset": "svhn", "image_size": 64}, "--image-size 64: svhn images have image size 32"),
        ({"channels": 2, "dataset": "folder"}, "--channels must be 1 (grey) or 3"),
        ({"gan_baseline": True, "q_step": "d"}, "--gan-baseline trains a plain GAN's D"),
        ({"lambda_real": 1.0, "categorical": [], "continuous": 2}, "--lambda-real needs a categorical code"),
        ({"leak": 1.5}, "--leak must be a slope"),
        ({"r1": -1.0}, "--r1 must be a weight >= 0"),
        ({"lambda_real_fade": [1500]}, "--lambda-real-fade takes two steps START < END"),
        ({"lambda_real_fade": [2500, 1500]}, "--lambda-real-fade takes two steps START < END"),
        ({"lambda_real_fade": [-1, 1500]}, "--lambda-real-fade must be a whole number from 0"),
        ({"lambda_real_fade": [1500.5, 2500]}, "--lambda-real-fade must be a whole number from 0"),
        ({"lambda_real_fade": "1500 2500"}, "--lambda-real-fade takes two steps START < END"),
        ({"lambda_real_fade": [1500, 2500], "lambda_real": 0.0}, "--lambda-real-fade fades the clustering term"),
        ({"neighbours": 3, "lambda_real": 0.0}, "--neighbours 3 pairs views in the clustering term, which --lambda"),
        ({"neighbours": 2, "preset": "paper"}, "--neighbours 2 pairs views in the clustering term, which --lambda"),
        ({"neighbours": -1}, "--neighbours must be a whole number from 0 to 100"),
        ({"li_views": True, "categorical": [], "lambda_real": 0.0}, "--li-views changes what Q reads the categorical"),
        ({"li_views": True, "q_step": "d"}, "--li-views shows the views to Q in the G.Q step, where --q-step d"),
        (
            {"arch": "svhn"},
            "--arch svhn needs images whose side is a multiple of 16, not 28x28 (mnist's): choose another",
        ),
        ({"dataset": "folder", "image_size": 40}, "not 40x40 (folder's): choose --image-size or another --arch"),
        (
            {"dataset": "folder", "image_size": 42, "arch": "mnist"},
            "--arch mnist needs images whose side is a multiple of 4",
        ),
        # A preset made for other images: the message says where the setting came from.
        ({"preset": "faces3d"}, "--image-size 32: mnist images have .* (as --preset faces3d sets it, for other images"),
        (
            {"preset": "svhn"},
            "--arch svhn needs .* (as --preset svhn sets it, for other images than mnist's: give their",
        ),
        ({"preset": "svhn", "dataset": "svhn", "image_size": 20}, "--image-size 20: svhn images have image size 32$"),
    ],
)
def test_bad_settings(flags, message):
    with pytest.raises(InfoGANError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig.from_flags(flags)


def test_config_json_round_trip_and_refusals(tmp_path):
    cfg = TrainConfig(batch_size=32, categorical=[10, 20])
    values = json.loads(cfg.to_json())
    assert values["iterations"] == 3000  # the default spelled out: a later default cannot change the run
    assert TrainConfig.from_dict(values, "c") == dataclasses.replace(cfg, iterations=3000)
    assert json.loads(TrainConfig(epochs=3).to_json())["iterations"] is None
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({k: v for k, v in values.items() if k != "leak"}))
    with pytest.raises(InfoGANError, match=r"lacks the settings \['leak'\]: written by an older version"):
        read_config(str(run))
    # A setting added later reads, where absent, as what the versions before it did.
    for later, before in (("lambda_real_fade", None), ("neighbours", 0)):
        (run / "config.json").write_text(json.dumps({k: v for k, v in values.items() if k != later}))
        assert read_config(str(run)) == dataclasses.replace(cfg, iterations=3000, **{later: before})
    (run / "config.json").write_text(json.dumps(dict(values, color="red")))
    with pytest.raises(InfoGANError, match=r"unknown settings \['color'\]"):
        read_config(str(run))
    (run / "config.json").write_text(json.dumps(dict(values, batch_size=0)))
    with pytest.raises(InfoGANError, match="config.json: --batch-size must be"):
        read_config(str(run))
    (run / "config.json").write_text("[1, 2]")
    with pytest.raises(InfoGANError, match="not a run config"):
        read_config(str(run))
    with pytest.raises(InfoGANError, match="is not a directory"):
        read_config(str(run / "config.json"))


def test_importing_the_package_changes_no_environment_or_warning_filter():
    # Paddle's own import sets what it sets; the package's modules, imported after it, must add nothing.
    code = (
        "import json, os, sys, warnings;"
        "import infogan, infogan.config, infogan.cli; light = 'paddle' not in sys.modules;"
        "import paddle, paddle.nn, scipy.ndimage, scipy.optimize, tqdm;"
        "env = dict(os.environ); filters = list(warnings.filters);"
        "import infogan.nets, infogan.programs, infogan.trainer, infogan.grids, infogan.scoring, infogan.figures;"
        "print(json.dumps([light, dict(os.environ) == env, warnings.filters == filters]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [True, True, True], done.stderr


def test_thread_settings_are_applied_by_an_explicit_call_and_yield_to_the_user():
    from infogan.device import apply_thread_settings, thread_settings

    env = {}
    apply_thread_settings(env)
    assert env == thread_settings()
    mine = {"MKL_NUM_THREADS": "7"}
    apply_thread_settings(mine)
    assert mine["MKL_NUM_THREADS"] == "7"
    off = {"INFOGAN_THREAD_ENV": "0"}
    apply_thread_settings(off)
    assert off == {"INFOGAN_THREAD_ENV": "0"}
