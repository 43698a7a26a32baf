"""``python -m dmlnotes.experiments.temperature_sweep``: the same as ``dmlnotes-temperature-sweep``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
