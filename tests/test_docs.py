"""Every registered method is documented: a row in docs/methods.md linking to its page under docs/methods/."""

import re
from pathlib import Path

import pytest

import defocus

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("name", defocus.available())
def test_method_documented(name):
    table = (DOCS / "methods.md").read_text()
    link = re.search(rf"\[`{re.escape(name)}`\]\(methods/([\w.-]+\.md)\)", table)
    assert link, f"docs/methods.md has no row for {name}"
    assert (DOCS / "methods" / link.group(1)).is_file()
