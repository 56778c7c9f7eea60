"""The core stays free of torch, Captum and SHAP (docs/design.md, "Layout")."""

import subprocess
import sys


def test_importing_the_package_loads_no_deep_learning_framework():
    code = (
        "import sys, proxyspex_captum as psx; "
        "psx.ProxySPEX; psx.SPEX; "
        "print(sorted(m for m in ('torch', 'captum', 'shap', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
