"""Every error message hatch-component-init can emit, as templates read from its source.

A template is a message with each computed part replaced by ``…``, e.g.
``Option `…` for build hook `…` must be a string``. They are collected from
every place that builds one of our exceptions (a class of
``hatch_component_init.errors`` or a subclass, the CLI's refusals), from the
CLI's and the hooks' own wording around them, and compared with the messages
that docs/troubleshooting.md lists.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import hatch_component_init
from hatch_component_init import errors

PACKAGE = Path(hatch_component_init.__file__).parent
HOLE = "…"

#: Exception types whose messages reach the user as they are: ours, and the CLI's argument errors.
_OURS = {name for name, value in vars(errors).items() if inspect.isclass(value) and issubclass(value, Exception)}
_CLI_REFUSALS = {"_Refused", "ArgumentTypeError"}
#: Internal errors whose message reaches the user inside another: the binary parsers' own (turned
#: into InvalidComponentError with its offset), a stand-in import's (the trap that init failed with).
_PARSER_ERRORS = {"_Malformed", "ImportCalled"}
#: Builtin exceptions: their messages count when worded for a hook (the edge shows them as they are).
_BUILTINS = {"TypeError", "ValueError", "FileNotFoundError", "NotADirectoryError", "OSError", "RuntimeError"}
#: Functions whose string argument is a whole message the CLI or a hook prints.
_PRINTERS = {"_fail", "display_warning", "warn"}
#: Functions that word (part of) a message: what they return, or assign to `text`/`message`, is one
#: (and so for every function whose name ends in `_warning` or `_message`).
_WORDING = {
    "failure_message", "_explain", "_internal_error", "tail", "_missing_component_message", "missing_requires_python",
    "not_found", "unknown_message",
}  # fmt: skip
#: What only prefixes a message worded elsewhere (e.g. `Option `host` for build hook `x` ` + a wording function's).
_PREFIX_ONLY = re.compile(r"(Option `[^`]*` for build hook `…`|…) …")


def _class_names() -> set[str]:
    """Our exception classes, wherever they are defined (e.g. runtime.CompileError)."""
    names = set(_OURS)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(_name(base) in names for base in node.bases):
                names.add(node.name)
    # A second pass catches subclasses of subclasses defined later in the tree.
    return names


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def template(node: ast.expr | None, assignments: dict[str, ast.expr]) -> str:
    """The message ``node`` builds, with what is computed at run time as ``…``."""
    if node is None:
        return HOLE
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_part(part, assignments) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return template(node.left, assignments) + template(node.right, assignments)
    if isinstance(node, ast.Name) and node.id in assignments:
        return template(assignments[node.id], assignments)
    if isinstance(node, ast.Call) and _name(node.func) == "error" and node.args:
        if _is_option_reader(node.func) and len(node.args) == 2:
            # OptionReader.error(option, problem): hatchling's wording for an option.
            option = template(node.args[0], assignments) if isinstance(node.args[0], ast.Constant) else HOLE
            return f"Option `{option}` for build hook `{HOLE}` {template(node.args[1], assignments)}"
        # The binary readers' error(message, offset), argparse's parser.error(message).
        return template(node.args[0], assignments)
    return HOLE


def _is_option_reader(func: ast.expr) -> bool:
    """``reader.error`` / ``self.options.error``: the hooks' OptionReader."""
    return isinstance(func, ast.Attribute) and _name(func.value) in {"reader", "options"}


def _part(part: ast.expr, assignments: dict[str, ast.expr]) -> str:
    """One piece of an f-string: its text, a message built earlier in the function, or ``…``."""
    if isinstance(part, ast.Constant):
        return str(part.value)
    if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name) and part.value.id in assignments:
        return template(part.value, assignments)
    return HOLE


def _assignments(nodes: list[ast.AST]) -> dict[str, ast.expr]:
    """``name = <message>`` and ``name += <more>`` among ``nodes``, as one expression per name."""
    found: dict[str, ast.expr] = {}
    for node in sorted(nodes, key=lambda item: (getattr(item, "lineno", 0), getattr(item, "col_offset", 0))):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and isinstance(node.op, ast.Add):
            previous = found.get(node.target.id)
            if previous is not None:
                # Usually added under a condition: the message is either.
                grown = ast.BinOp(previous, ast.Add(), node.value)
                found[node.target.id] = ast.IfExp(ast.Constant(True), grown, previous)
    return found


def _normalized(text: str) -> str:
    text = re.sub(rf"(?:{HOLE})+", HOLE, text)
    return " ".join(text.split())


def _choices(node: ast.expr, assignments: dict[str, ast.expr]) -> list[ast.expr]:
    """The messages an expression can be: both branches of ``a if test else b``, through variables too."""
    if isinstance(node, ast.Name) and node.id in assignments:
        return _choices(assignments[node.id], assignments)
    if isinstance(node, ast.IfExp):
        return [*_choices(node.body, assignments), *_choices(node.orelse, assignments)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [
            ast.BinOp(left, ast.Add(), right)
            for left in _choices(node.left, assignments)
            for right in _choices(node.right, assignments)
        ]
    return [node]


def _own_nodes(scope: ast.AST) -> list[ast.AST]:
    """The nodes of ``scope`` outside the functions defined in it (each function is its own scope)."""
    found: list[ast.AST] = []
    pending = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        found.append(node)
        pending += ast.iter_child_nodes(node)
    return found


def _messages_in(scope: ast.AST, classes: set[str]) -> list[tuple[str, int]]:
    nodes = _own_nodes(scope)
    assignments = _assignments(nodes)
    wording = isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
        scope.name in _WORDING or scope.name.endswith(("_warning", "_message"))
    )
    found = []
    for node in nodes:
        if isinstance(node, ast.Call) and node.args and (_name(node.func) in classes or _name(node.func) in _PRINTERS):
            found += [(template(choice, assignments), node.lineno) for choice in _choices(node.args[0], assignments)]
        elif isinstance(node, ast.Call) and node.args and _name(node.func) in _BUILTINS:
            texts = [template(choice, assignments) for choice in _choices(node.args[0], assignments)]
            found += [(text, node.lineno) for text in texts if "for build hook `" in text]
        elif isinstance(node, ast.Call) and _name(node.func) == "error" and node.args and not _is_option_reader(node.func):
            found.append((template(node, assignments), node.lineno))
        elif wording and isinstance(node, ast.Return) and node.value is not None:
            found += [(template(choice, assignments), node.lineno) for choice in _choices(node.value, assignments)]
        elif wording and isinstance(node, ast.Assign) and _name(node.targets[0]) in {"text", "message"}:
            found += [(template(choice, assignments), node.lineno) for choice in _choices(node.value, assignments)]
    return found


def collect() -> dict[str, list[str]]:
    """Template -> where it is built (``module.py:line``), for every message that says something itself."""
    classes = _class_names() | _CLI_REFUSALS | _PARSER_ERRORS
    templates: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)))]
        for scope in scopes:
            for raw, line in _messages_in(scope, classes):
                text = _normalized(raw)
                if text.replace(HOLE, "").strip(" :.;`") == "" or _PREFIX_ONLY.fullmatch(text):
                    continue  # passes another message on unchanged
                templates.setdefault(text, []).append(f"{path.relative_to(PACKAGE.parent).as_posix()}:{line}")
    return templates


if __name__ == "__main__":
    for text, places in sorted(collect().items()):
        print(f"{text}    [{places[0]}]")
