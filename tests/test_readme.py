"""The README's Python example runs as written and learns."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_learns():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(blocks[0], str(README), "exec"), {})

    accuracy = float(re.fullmatch(r"test accuracy (\d\.\d+)\n", output.getvalue()).group(1))
    assert accuracy >= 0.9
