"""Exporting a run as Paddle inference models that need nothing of this project: the generator (latent
codes in, images out) and the encoder (images in, Q's categorical probabilities and continuous means out),
with batch norm in inference mode and Paddle's standard kernels only, plus latent.json describing them.

    EXPORT/generator.json, generator.pdiparams   inputs z [N, noise], c_cat [N, sum of K], c_cont [N, codes]
    EXPORT/encoder.json, encoder.pdiparams       input images [N, C, H, W] in the value range
    EXPORT/latent.json                           the codes, their sizes and ranges, the image shape and range,
                                                 each model's input and output names

docs/export.md shows a ten-line script that runs them with paddle and numpy alone.
"""

import json
import os

from infogan import InfoGANError
from infogan.files import folder_identity, staged_dir, write_error

FORMAT = "infogan-export-1"
DESCRIPTION = "latent.json"  # the export's description: what marks a folder as an export


def export_run(run_dir, out_dir=None):
    """Writes the export of the run's latest checkpoint into `out_dir` (default RUN_DIR/export); returns it."""
    import paddle

    from infogan.api import own_static_scope
    from infogan.checkpoints import latest, load_inference_state
    from infogan.config import read_config
    from infogan.latent import LatentSpec
    from infogan.nets import Compute, NetSpec
    from infogan.programs import build_inference
    from infogan.rundir import OUT_HINT, check_unreplaced, note_if_training

    cfg = read_config(run_dir)
    exported = folder_identity(run_dir)
    checkpoint = latest(run_dir)
    note_if_training(run_dir, checkpoint)
    given_out = bool(out_dir)
    hint = "" if given_out else OUT_HINT
    out_dir = out_dir or os.path.join(run_dir, "export")
    if os.path.exists(out_dir) and not os.path.isfile(os.path.join(out_dir, DESCRIPTION)):
        if not os.path.isdir(out_dir) or os.listdir(out_dir):
            raise InfoGANError(f"--out {out_dir} exists and is not an export: choose another folder")
    spec = LatentSpec.from_config(cfg)
    net = NetSpec.from_config(cfg, spec)
    with own_static_scope():
        startup, generate_step, encode_step = build_inference(cfg, spec, Compute(batched_conv=False))
        exe = paddle.static.Executor(paddle.CPUPlace())
        try:
            with staged_dir(out_dir) as tmp:
                exe.run(startup)
                models = {}
                for role, step in (("generator", generate_step), ("encoder", encode_step)):
                    load_inference_state(checkpoint, step.program)
                    feeds = [op.result(0) for op in step.program.global_block().ops if op.name() == "pd_op.data"]
                    outputs = list(step.fetches)
                    fetches = [step.fetches[name] for name in outputs]
                    paddle.static.save_inference_model(
                        os.path.join(tmp, role), feeds, fetches, exe, program=step.program
                    )
                    models[role] = {
                        "model": f"{role}.json",
                        "params": f"{role}.pdiparams",
                        "inputs": [
                            op.attrs()["name"] for op in step.program.global_block().ops if op.name() == "pd_op.data"
                        ],
                        "outputs": outputs,
                    }
                description = dict(spec.describe(), **models)
                description.update(
                    format=FORMAT,
                    image={"shape": list(cfg.image_shape), "value_range": list(net.value_range)},
                    run={
                        "dataset": cfg.dataset,
                        "arch": cfg.arch,
                        "seed": cfg.seed,
                        "checkpoint": os.path.basename(checkpoint),
                    },
                )
                with open(os.path.join(tmp, DESCRIPTION), "w") as f:
                    json.dump(description, f, indent=2)
                if not given_out:
                    check_unreplaced(run_dir, exported, "it was exported")
        except OSError as e:
            raise InfoGANError(f"{write_error(out_dir, e)}{hint}") from None
    return out_dir
