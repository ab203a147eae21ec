"""InfoGAN (Chen et al., NeurIPS 2016) on PaddlePaddle's static graph.

Importing the package does nothing else: no environment variable, warning filter or Paddle import.
"""


class InfoGANError(Exception):
    """A problem the user can fix; scripts print its message on one line and exit with `exit_code`."""

    exit_code = 2


def load(path, device="cpu"):
    """A trained model from a run directory or an exported folder: see infogan.api."""
    from infogan.api import load as load_model

    return load_model(path, device)
