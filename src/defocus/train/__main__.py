"""``python -m defocus.train --config NAME`` (also what ``torchrun -m defocus.train`` runs): ``defocus train``."""

import sys

from ..cli import main

sys.exit(main(["train", *sys.argv[1:]]))
