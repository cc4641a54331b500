"""Modules of an optional extra are imported for their doctests only where that extra is installed."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("fastapi") else ["src/defocus/serve/app.py"]
