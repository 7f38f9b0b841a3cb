"""Runs the 8-device cases in a subprocess.

XLA's host device count must be set before jax is imported, so each file of cases in
``multidevice/case_*.py`` runs in its own pytest process with
``--xla_force_host_platform_device_count=8``; this test fails with that run's output
when any case fails.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "multidevice"


@pytest.mark.parametrize("case", sorted(p.name for p in HERE.glob("case_*.py")))
def test_multidevice_cases_pass_on_8_cpu_devices(case):
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    env["XLA_FLAGS"] = flags.strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "python_files=case_*.py",
            "-o",
            "addopts=",
            str(HERE / case),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout
