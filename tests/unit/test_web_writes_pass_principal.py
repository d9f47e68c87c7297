"""Every task and report write the web layer makes names the logged-in user (issue 7).

The services check role and area only when given a ``principal`` (None is the operator at the
shell), so a page calling one without it would write unchecked. This reads the web package's source
and finds every call of a write service: each must pass ``principal=``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gridmap.web

WRITES = frozenset({
    "create_task", "preview_task", "generate_contact_rounds", "close_task", "take_item", "release_item",
    "finish_item", "validate_item", "reassign_item", "file_report", "file_zero_report", "export_report_xlsx",
    "log_contact", "update_key_person", "reveal_key_person",
})
# Services that take the principal as their second positional argument.
POSITIONAL = {"log_contact": 1, "update_key_person": 1, "reveal_key_person": 1}


def _calls():
    root = Path(gridmap.web.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in WRITES:
                    yield path.relative_to(root.parent.parent), node.lineno, name, node


def test_every_write_from_the_web_passes_the_principal():
    found, missing = 0, []
    for path, line, name, call in _calls():
        found += 1
        if name in POSITIONAL and len(call.args) > POSITIONAL[name]:
            continue
        if not any(k.arg == "principal" for k in call.keywords):
            missing.append(f"{path}:{line} {name}")
    assert found >= 12  # the pages' writes were found at all
    assert missing == []
