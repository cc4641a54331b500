"""Training blur detectors: one trainer for synthetic and real data (``defocus train``).

* :mod:`.config` — :class:`TrainConfig` and the named recipes (:data:`RECIPES`);
* :mod:`.data` — synthetic pool / on-the-fly scenes, real folders, joint augmentation, resumable sample order;
* :mod:`.losses` — BCE + DOF-edge Dice loss with deep supervision (D-DFFNet Eq. 4–7);
* :mod:`.trainer` — :func:`train`: schedule, clipping, AMP, checkpoints, validation, DDP;
* :mod:`.checkpoint` — crash-safe checkpoints; :mod:`.validate` — validation sets and scores;
* :mod:`.command` — the ``defocus train`` subcommand. See docs/training.md.
"""

from .config import RECIPES, TrainConfig, get_config

__all__ = ["RECIPES", "TrainConfig", "get_config", "train"]


def train(*args, **kwargs):
    """See :func:`defocus.train.trainer.train` (imported lazily: it pulls in torch)."""
    from .trainer import train as _train

    return _train(*args, **kwargs)
