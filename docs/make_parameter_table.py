"""Regenerate the parameter table of docs/model.md from the code's scenario defaults.

Run ``python docs/make_parameter_table.py`` after changing a default; a test fails while the table
in docs/model.md differs from this output.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from satedge.sim.scenario import parameter_table

BEGIN, END = "<!-- parameter-table:begin -->", "<!-- parameter-table:end -->"
DOC = Path(__file__).with_name("model.md")


def table_markdown() -> str:
    """The parameter table as Markdown."""
    lines = ["| key | default | unit | allowed | tag | meaning |", "|---|---|---|---|---|---|"]
    for row in parameter_table():
        value = json.dumps(row["value"]).replace("|", "\\|")
        lines.append(f"| `{row['key']}` | {value} | {row['unit']} | {row['range']} | "
                     f"{row['tag']} | {row['description']} |")
    return "\n".join(lines)


def main() -> None:
    text = DOC.read_text()
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END),
                 f"{BEGIN}\n{table_markdown()}\n{END}", text, flags=re.S)
    DOC.write_text(new)


if __name__ == "__main__":
    main()
