"""The tiny setting the runner tests share: digits, a tiny space, 1 epoch, 10 profiled subnets
(fast protocol), a random search of 6; and the CLI called in-process, returning its exit code."""

from __future__ import annotations

from pathlib import Path

from runners.cli import main

TINY = """
seed = 0
[task]
name = "digits"
[space]
embed_dims = [16, 32]
depths = [1, 2]
heads = [1, 2]
ffn_ratios = [1, 2]
head_dim = 8
local_window = 4
[train]
epochs = 1
threads = 1
[profile]
samples = 10
preset = "fast"
pass_gap = 0  # a two-thread device measures in three passes, here back to back
[search]
algorithm = "random"
budget = 6
"""


def cli(*argv: str) -> int:
    try:
        main(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def tiny_run(root: Path, config: str = TINY) -> Path:
    """`hwnas run` of `config` into root/run (config written to root/tiny.toml); the run folder."""
    (root / "tiny.toml").write_text(config)
    run = root / "run"
    assert cli("run", "--config", str(root / "tiny.toml"), "--run", str(run)) == 0
    return run
