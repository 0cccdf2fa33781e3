"""`bufferlint --runtime` when the code it runs misbehaves: an import that fails, a
constructor that raises, hangs, segfaults, is killed as the OOM killer kills, runs out of
memory or asks for an absurd size. Each costs only its own class's verdict; the run goes
on and the other classes get theirs. Buffers that are random by design are judged by the
two-pass sentinel test (0x00 then 0xFF fills), not by equality with an eager build.

tests/runtime/test_runtime_check.py covers the same failures through the Python API, on
classes the static analysis does not flag; here they go through the CLI, as a user meets
them. The CLI runs in this process, sharing the forkserver with tests/test_runtime_cli.py.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bufferlint.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("lightning") is None,
    reason="runtime mode needs torch and lightning",
)

MODELS = textwrap.dedent(
    """\
    import os
    import resource
    import signal
    import time

    import torch
    from torch import nn


    class Confirmed(nn.Module):
        def __init__(self, dim: int = 8) -> None:
            super().__init__()
            inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim))
            self.register_buffer("inv_freq", inv_freq)


    class RaisesAfterRegistering(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.ones(2))
            raise RuntimeError("cannot build this")


    class Hangs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.ones(2))
            time.sleep(3600)


    class Segfaults(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.ones(2))
            os.kill(os.getpid(), signal.SIGSEGV)


    class KilledAsByTheOOMKiller(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.ones(2))
            os.kill(os.getpid(), signal.SIGKILL)


    class OutOfMemoryUnderALimit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            with open("/proc/self/statm") as statm:  # the worker's own limit: 1 GiB more
                used = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            resource.setrlimit(resource.RLIMIT_AS, (used + 2**30, resource.RLIM_INFINITY))
            scratch = torch.ones(2**31)  # 8 GiB, refused at once; nothing on meta
            self.register_buffer("b", scratch[:2].clone())


    class AbsurdTensor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.ones(2**40))


    class AbsurdList(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            table = [0.0] * 10**13
            self.register_buffer("b", torch.tensor(table[:4]))


    class RandomRedrawnDifferently(nn.Module):
        \"""Its hook draws other random numbers than construction did: unequal to any eager
        build, and still right.\"""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("noise", torch.randn(4, 4))

        def reset_parameters(self) -> None:
            torch.rand(7)
            for name in ("noise",):  # not something the static analysis follows
                getattr(self, name).normal_()


    class RandomNotRebuilt(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("noise", torch.randn(4, 4))

        def reset_parameters(self) -> None:
            pass
    """
)
BOOM = textwrap.dedent(
    """\
    import torch
    from torch import nn

    raise ImportError("boom at import time")


    class Unreachable(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("b", torch.ones(2))
    """
)
TIMEOUT = 3
# class -> (verdict, what its one-line summary says)
EXPECTED = {
    "Confirmed": ("confirmed", "inv_freq[:4] expected [1.0, 0.1, 0.01, 0.001], got [nan"),
    "RaisesAfterRegistering": ("error", "defaults raised RuntimeError: cannot build this"),
    "Hangs": ("error", f"timed out after {TIMEOUT} s"),
    "Segfaults": ("error", "worker killed by SIGSEGV (Segmentation fault at models.py"),
    "KilledAsByTheOOMKiller": ("error", "worker killed by SIGKILL"),
    "OutOfMemoryUnderALimit": ("error", "eager build failed: RuntimeError: [enforce fail"),
    "AbsurdTensor": ("unconfirmed", "too large to build eagerly (1,099,511,627,776 elements)"),
    "AbsurdList": ("error", "defaults raised MemoryError"),
    "RandomRedrawnDifferently": ("refuted", "noise rebuilt correctly"),
    "RandomNotRebuilt": ("confirmed", "noise[0, :4] depends on uninitialized memory"),
    "Unreachable": ("error", "import failed: ImportError: boom at import time"),
}


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """One run over every misbehaving class: none may stop the others."""
    folder = tmp_path_factory.mktemp("misbehaving")
    (folder / "models.py").write_text(MODELS)
    (folder / "boom.py").write_text(BOOM)
    result = CliRunner().invoke(
        main,
        ["--runtime", "--runtime-timeout", str(TIMEOUT), "--output-format", "json", str(folder)],
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return {item["class_name"]: item for item in json.loads(result.output)}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_class_gets_its_own_verdict(verdicts: dict[str, dict], name: str) -> None:
    if name == "OutOfMemoryUnderALimit" and not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/statm")
    verdict, summary = EXPECTED[name]
    runtime = verdicts[name]["runtime"]
    assert runtime["verdict"] == verdict, runtime["summary"]
    assert summary in runtime["summary"]
    assert "\n" not in runtime["summary"] and "Traceback" not in runtime["summary"]


def test_every_flagged_class_was_checked(verdicts: dict[str, dict]) -> None:
    assert set(verdicts) == set(EXPECTED)


def test_only_refuted_findings_exit_0(tmp_path: Path) -> None:
    """The random buffer the hook redraws is all there is: refuted, so the run passes."""
    source = MODELS.split("\n\n\nclass RandomNotRebuilt")[0]
    keep = source.split("class Confirmed")[0] + "class RandomRedrawnDifferently"
    keep += source.split("class RandomRedrawnDifferently")[1]
    (tmp_path / "random_only.py").write_text(keep)
    result = CliRunner().invoke(main, ["--runtime", "--output-format", "concise", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "[refuted: noise rebuilt correctly" in result.output
