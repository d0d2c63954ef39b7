"""Print one of the README's two set-up commands, exactly as the README writes it.

    python .ci/readme_commands.py main    # the main job
    python .ci/readme_commands.py tests   # the tests command

They are the first two ```bash blocks after the heading "## Set-up: two commands"; CI runs
them verbatim, so the README cannot drift from what is checked.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def commands() -> dict[str, str]:
    text = README.read_text()
    start = text.index("## Set-up: two commands")
    end = text.find("\n## ", start + 1)
    blocks = re.findall(r"```bash\n(.*?)```", text[start:end if end > 0 else None], flags=re.S)
    if len(blocks) < 2:
        raise SystemExit("README.md: the set-up section needs two ```bash blocks")
    return {"main": blocks[0].strip(), "tests": blocks[1].strip()}


if __name__ == "__main__":
    print(commands()[sys.argv[1]])
