"""The README's Python snippets run, in order, as a new user would paste them."""

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_snippets_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    torch.manual_seed(0)
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    # the concepts example produced [T, B, 100] spikes, learning changed the weights
    assert namespace["out"].shape == (350, 32, 100)
    assert namespace["counts"].shape == (32, 100)
    assert float(namespace["net"].fc.weight.min()) >= 0.0
