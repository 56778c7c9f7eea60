"""``python -m proxyspex_captum explain ...``: the command line (:mod:`proxyspex_captum.cli`)."""

import sys

from .cli import main

sys.exit(main())
