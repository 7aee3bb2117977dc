"""docs/errors.md must list exactly the codes the code can produce, with their statuses."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Every ApiError lives in banatie/errors.py or an app's errors.py (one catalogue per owner).
MODULES = ["banatie.errors", *sorted(f"apps.{p.parent.name}.errors" for p in (ROOT / "apps").glob("*/errors.py"))]
ABSTRACT = {"ApiError", "AuthError", "JobError"}


def error_classes() -> list[type]:
    for module in MODULES:
        importlib.import_module(module)
    from banatie.errors import ApiError

    found, todo = [], [ApiError]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__name__ not in ABSTRACT:
                found.append(sub)
    return found


def catalogue() -> dict[str, set[int]]:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", (ROOT / "docs/errors.md").read_text(), re.M)
    table: dict[str, set[int]] = {}
    for code, status in rows:
        table.setdefault(code, set()).add(int(status))
    return table


def source_text() -> str:
    return "\n".join(p.read_text() for d in ("banatie", "apps", "workers") for p in (ROOT / d).rglob("*.py"))


def test_every_error_code_is_in_the_catalogue_with_its_status():
    table = catalogue()
    for cls in error_classes():
        assert cls.code in table, f"{cls.__name__} raises {cls.code!r}, missing from docs/errors.md"
        assert cls.status_code in table[cls.code], f"{cls.code}: status {cls.status_code} not in docs/errors.md"


def test_the_catalogue_lists_no_code_nothing_raises():
    codes = {cls.code for cls in error_classes()}
    assert set(catalogue()) - codes == set()


def test_every_error_class_is_used_somewhere():
    source = source_text()
    for cls in error_classes():
        uses = len(re.findall(rf"\b{cls.__name__}\b", source)) - 1  # minus its definition
        assert uses > 0, f"{cls.__name__} is defined but never used"


def test_error_classes_live_only_in_errors_modules():
    for cls in error_classes():
        assert cls.__module__ in MODULES, f"{cls.__name__} is defined in {cls.__module__}, not an errors.py"
