"""`python -m laughtrack.store [FILE]`: write docs/schema.md from the schema declaration."""

import sys
from pathlib import Path

from laughtrack.store.schema import markdown

target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "docs" / "schema.md"
target.write_text(markdown())
print(f"wrote {target}")
