"""InfoGAN (Chen et al., NeurIPS 2016) on PaddlePaddle's static graph.

Importing the package does nothing else: no environment variable, warning filter or Paddle import.
"""


class InfoGANError(Exception):
    """A problem the user can fix; scripts print its message on one line and exit with `exit_code`."""

    exit_code = 2


def load(path, device="cpu"):
    """A trained model from a run directory or an exported folder: see infogan.api. Where Paddle is not yet
    imported, this sets the scripts' thread settings (infogan.device; any the environment has stay) before
    it is: G and Q then run 1.4 times faster, and Paddle's log lines stay off."""
    import sys
    import warnings

    from infogan.device import apply_thread_settings, ignore_paddle_warnings

    if "paddle" not in sys.modules:
        apply_thread_settings()
    with warnings.catch_warnings():
        ignore_paddle_warnings()
        from infogan.api import load as load_model

        return load_model(path, device)
