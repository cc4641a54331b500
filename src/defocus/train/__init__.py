"""Training: one loop for every network of defocus (``defocus train``).

* :mod:`.config` — :class:`TrainConfig` and the named recipes (:data:`RECIPES`);
* :mod:`.tasks` — what a run trains: dense blur maps, or edge-patch classes (B-Net / E-Net);
* :mod:`.data` — synthetic pool / on-the-fly scenes, real folders, joint augmentation, resumable sample order;
  :mod:`.benet_data` — B-Net / E-Net edge patches;
* :mod:`.losses` — BCE + DOF-edge Dice loss with deep supervision (D-DFFNet Eq. 4–7); :mod:`.distill`;
* :mod:`.trainer` — :func:`~defocus.train.trainer.train`: build, data, loop, validate, save; schedule, clipping,
  AMP, DDP;
* :mod:`.checkpoint` — crash-safe checkpoints and resume; :mod:`.validate` — validation sets and scores;
* :mod:`.command` — the ``defocus train`` subcommand. See docs/training.md.

This package never imports :mod:`defocus.methods` (the inference adapters).
"""

from .config import RECIPES, TrainConfig, get_config

__all__ = ["RECIPES", "TrainConfig", "get_config"]
