#!/usr/bin/env python
"""Mutation testing for scoredyn's mathematical modules.

A mutant is one planted one-line formula bug: a changed numeric constant, a swapped arithmetic operator, a
dropped power or square root, a removed minus sign, a flipped comparison, ``min`` for ``max``, a changed
keyword default, a factor of two on pi. Mutants are made from the standard library's ``ast`` and spliced
into the original text, so the rest of the file keeps its layout. A mutant is *killed* when some test
fails (or the run exceeds its time limit), and *survives* when every test that runs the mutated line
passes, or when no test runs it at all.

Which tests run for a mutant: a table maps each source module to the test paths that may exercise it
(``TEST_TABLE``). One run of those tests under ``coverage``, with one coverage context per test, gives the
tests that execute each line (code run while a test module is imported counts for all its tests); a mutant
runs only the tests that execute its statement (the whole outer function for code in a closure, the
function's body for a default argument, any line of the class or module for class- or module-level code),
widened to every test of the same file that shares a module- or class-scoped fixture with a selected one.
The coverage map is cached and rebuilt when a source or test file changes. ``--no-coverage-select`` runs the
table's test paths in full instead.

Mutants are never written into the repository: each worker copies ``<root>/src`` once, writes the
mutated module into its copy, runs pytest there with ``PYTHONPATH=<copy>/src`` and restores the file.

Not mutated: docstrings and other strings, type hints, ``__all__``, decorators, ``raise`` and
``assert`` statements, guards whose body only raises or warns, f-strings, logging, warnings, printing
and callback calls, tensor-shape and dimension arguments (``dim=``, ``x.sum(-1)``, ``torch.zeros(n,
d)``), dtype/device/generator keywords, numerical guards (constants of magnitude at most 1e-6), cache
sizes, values only used in messages, and equivalent swaps (``x + 0``, ``x * 1``).

Usage (from the repository root; ``--root`` points at another checkout, e.g. a git worktree)::

    python tools/mutation.py --list
    python tools/mutation.py --sample 120 --seed 1 --jobs 1 --out mutation.json
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import glob
import hashlib
import json
import math
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

# the mathematical modules, as globs relative to src/scoredyn
DEFAULT_MODULES = [
    "core/processes/*.py",
    "core/fields/coefficients.py",
    "core/fields/analytic.py",
    "core/targets/mixture.py",
    "samplers/*.py",
    "learning/losses/*.py",
    "likelihood/*.py",
    "metrics/*.py",
]

# source module (glob relative to src/scoredyn; first match wins) -> test paths (globs relative to the root)
# that may exercise it: its own layer's tests and the tests of the mathematical layers above it
_MATHS_TESTS = [
    "tests/core",
    "tests/samplers",
    "tests/likelihood",
    "tests/learning/test_loss*.py",
    "tests/metrics",
    "tests/kernels",
]
TEST_TABLE = [
    ("core/*", _MATHS_TESTS),
    ("kernels/*", ["tests/kernels", "tests/samplers", "tests/metrics"]),
    ("samplers/*", ["tests/samplers", "tests/likelihood", "tests/metrics"]),
    ("metrics/*", ["tests/metrics", "tests/samplers"]),
    ("likelihood/*", ["tests/likelihood", "tests/learning/test_loss*.py"]),
    ("learning/losses/*", ["tests/learning/test_loss*.py", "tests/likelihood"]),
    ("learning/*", ["tests/learning"]),
    ("physics/*", ["tests/physics"]),
]

PYTEST_ARGS = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-rfE", "--tb=line", "--no-header"]

# ----------------------------------------------------------------------------------------------------------
# mutant generation

_LOG_NAMES = {"print", "warn", "tqdm", "callback", "progress", "on_step", "log"}
_LOG_ATTRS = {
    "warn",
    "info",
    "debug",
    "warning",
    "error",
    "exception",
    "critical",
    "set_postfix",
    "set_description",
    "write",
    "format",
}
# (``tracker`` records a sampler's path and calls its callback)
_LOG_OWNERS = {"logger", "log", "logging", "warnings", "_log", "_logger", "LOGGER", "tracker"}
# keywords whose values are bookkeeping, not mathematics
_NONMATH_KW = {
    "dim",
    "axis",
    "keepdim",
    "keepdims",
    "dtype",
    "device",
    "generator",
    "out",
    "requires_grad",
    "stacklevel",
    "maxsize",
    "repr",
    "compare",
    "init",
    "hash",
    "eq",
    "frozen",
    "kw_only",
    "slots",
    "non_blocking",
    "pin_memory",
    "strict",
    "exist_ok",
    "parents",
    "encoding",
    "indent",
    "sort_keys",
    "layout",
    "memory_format",
    "start_dim",
    "end_dim",
    "dim0",
    "dim1",
}
# calls whose bare integer arguments are dimensions or shapes
_SHAPE_CALLS = {
    "sum",
    "mean",
    "std",
    "var",
    "prod",
    "logsumexp",
    "softmax",
    "log_softmax",
    "unsqueeze",
    "squeeze",
    "view",
    "reshape",
    "expand",
    "permute",
    "transpose",
    "flatten",
    "unflatten",
    "size",
    "cumsum",
    "cumprod",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "cat",
    "stack",
    "split",
    "chunk",
    "narrow",
    "repeat",
    "repeat_interleave",
    "tile",
    "movedim",
    "select",
    "gather",
    "index_select",
    "unbind",
    "flip",
    "roll",
    "diagonal",
    "zeros",
    "ones",
    "empty",
    "randn",
    "rand",
    "randint",
    "new_zeros",
    "new_ones",
    "new_empty",
    "new_full",
    "full",
    "eye",
    "diag_embed",
    "norm",
    "all",
    "any",
    "max",
    "min",
    "median",
    "sort",
    "topk",
    "einsum",
}
_SKIP_FUNCS = {"__repr__", "__str__", "__format__", "__rich_repr__"}
_MINMAX = {"min": "max", "max": "min", "minimum": "maximum", "maximum": "minimum", "amin": "amax", "amax": "amin"}
_MINMAX.update({"clamp_min": "clamp_max", "clamp_max": "clamp_min", "fmin": "fmax", "fmax": "fmin"})
_CLAMPS = {"clamp", "clamp_", "clip", "clip_"}
_PI_OWNERS = {"math", "torch", "np", "numpy"}
_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
_OPSYM = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CMPFLIPS = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt, ast.GtE),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt, ast.LtE),
}
_CMPSYM = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
TINY = 1e-6


@dataclass
class Mutant:
    """One planted bug: where it is, what it does, and the whole mutated module text."""

    id: str
    file: str  # relative to the root, e.g. src/scoredyn/samplers/edm.py
    line: int
    col: int
    operator: str
    description: str
    scope: tuple  # (kind, first line, last line) of the code whose coverage selects the tests
    lines: tuple  # (first, last) line of the mutated statement
    source: str = field(repr=False, default="")

    def public(self) -> dict:
        d = asdict(self)
        del d["source"]
        return d


def _call_name(call: ast.Call) -> tuple[str | None, str | None]:
    """(owner, name) of a call: ``torch.sqrt`` -> ("torch", "sqrt"), ``min`` -> (None, "min")."""
    f = call.func
    if isinstance(f, ast.Name):
        return None, f.id
    if isinstance(f, ast.Attribute):
        owner = (
            f.value.id
            if isinstance(f.value, ast.Name)
            else ("?" if not isinstance(f.value, ast.Attribute) else f.value.attr)
        )
        return owner, f.attr
    return None, None


def _is_log_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    owner, name = _call_name(node)
    if owner is None:
        return name in _LOG_NAMES
    return owner in _LOG_OWNERS or name in _LOG_ATTRS or name in _LOG_NAMES


def _is_message_stmt(stmt: ast.stmt) -> bool:
    """A raise, an assert, or a bare logging/warning call: statements that only report."""
    if isinstance(stmt, ast.Raise | ast.Assert | ast.Pass):
        return True
    return isinstance(stmt, ast.Expr) and (_is_log_call(stmt.value) or isinstance(stmt.value, ast.Constant))


def _is_guard(node: ast.If) -> bool:
    """``if bad: raise ...`` (possibly building the message first) or ``if odd: warnings.warn(...)``."""
    if not node.body or node.orelse:
        return False
    if isinstance(node.body[-1], ast.Raise):
        return all(isinstance(s, ast.Assign) or _is_message_stmt(s) for s in node.body)
    return all(_is_message_stmt(s) for s in node.body)


def _target_name(t: ast.AST) -> str:
    return t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""


def _bookkeeping(node: ast.AST) -> bool:
    """A cache's size bound (``self._limit``, ``_FLOORS_MAX``, ``maxsize``): changing it changes no value."""
    name = _target_name(node)
    low = name.lower()
    return "limit" in low or "maxsize" in low or (name.isupper() and name.endswith("_MAX"))


def _is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str | bytes))


def _num(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _atom(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return not (isinstance(node.value, int | float) and node.value < 0)
    return isinstance(node, ast.Name | ast.Attribute | ast.Call | ast.Subscript)


class _Generator:
    """Walks one module and yields its mutants."""

    def __init__(self, path: Path, relpath: str):
        self.relpath = relpath
        self.text = path.read_text()
        self.data = self.text.encode()
        self.tree = ast.parse(self.text)
        starts = [0]
        self.lines = self.data.splitlines()
        for line in self.data.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        self.starts = starts
        self.mutants: list[Mutant] = []
        self._message_only: set[tuple[int, str]] = set()

    # -- bookkeeping ---------------------------------------------------------------------------------------
    def run(self) -> list[Mutant]:
        self._find_message_only_names()
        self._visit(self.tree, parents=[], scope=("module", 1, len(self.data.splitlines()) or 1), stmt=None)
        return self.mutants

    def _find_message_only_names(self) -> None:
        """Names assigned in a function and read only inside raise/assert/log/f-string code."""
        for fn in ast.walk(self.tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            reads: dict[str, list[bool]] = {}

            def walk(node, in_msg, reads=reads):
                if isinstance(node, ast.Raise | ast.Assert | ast.JoinedStr) or _is_log_call(node):
                    in_msg = True
                if isinstance(node, ast.If) and _is_guard(node):
                    for s in node.body:
                        walk(s, True)
                    walk(node.test, in_msg)
                    return
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    reads.setdefault(node.id, []).append(in_msg)
                for child in ast.iter_child_nodes(node):
                    walk(child, in_msg)

            walk(fn, False)
            for name, flags in reads.items():
                if flags and all(flags):
                    self._message_only.add((fn.lineno, name))

    def _col(self, node: ast.AST) -> int:
        line = self.lines[node.lineno - 1]
        return len(line[: node.col_offset].decode(errors="replace")) + 1

    def _splice(self, node: ast.AST, text: str) -> str:
        a = self.starts[node.lineno - 1] + node.col_offset
        b = self.starts[node.end_lineno - 1] + node.end_col_offset
        return (self.data[:a] + text.encode() + self.data[b:]).decode()

    def _emit(self, node, replacement, apply, revert, operator, description, scope, stmt, whole=None):
        """Record a mutant: ``apply``/``revert`` change the tree in place (to check the splice); the
        text of ``whole`` (default ``node``) is replaced by the unparsed ``replacement``."""
        target = whole if whole is not None else node
        apply()
        try:
            expected = ast.dump(self.tree)
            text = ast.unparse(replacement)
        finally:
            revert()
        if isinstance(target, ast.expr) and not _atom(replacement):
            text = f"({text})"
        source = self._splice(target, text)
        try:
            ok = ast.dump(ast.parse(source)) == expected
        except SyntaxError:
            ok = False
        if not ok:  # the splice went wrong: fall back to the unparsed module (loses the layout, same code)
            apply()
            try:
                source = ast.unparse(self.tree) + "\n"
            finally:
                revert()
        k = sum(1 for m in self.mutants if m.line == node.lineno and m.col == self._col(node))
        mid = f"{self.relpath}:{node.lineno}:{self._col(node)}:{operator}:{k}"
        first = stmt.lineno if stmt is not None else node.lineno
        self.mutants.append(
            Mutant(
                mid,
                self.relpath,
                node.lineno,
                self._col(node),
                operator,
                description,
                scope,
                (first, node.end_lineno),
                source,
            )
        )

    # -- the walk --------------------------------------------------------------------------------------------
    def _visit(self, node, parents, scope, stmt, fn_line=None):  # noqa: C901
        parent = parents[-1] if parents else None
        if isinstance(node, ast.stmt):
            stmt = node
        # whole subtrees that are never mathematics
        if isinstance(node, ast.Raise | ast.Assert | ast.JoinedStr | ast.Import | ast.ImportFrom):
            return
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # docstrings
        if _is_log_call(node):
            return
        if isinstance(node, ast.Compare) and any(_bookkeeping(x) for x in [node.left, *node.comparators]):
            return  # a cache's eviction test
        if isinstance(node, ast.If) and _is_guard(node):
            return
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if "__all__" in names:
                return
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            if any(_bookkeeping(t) for t in flat):
                if len(flat) == 1 or not isinstance(node.value, ast.Tuple) or len(node.value.elts) != len(flat):
                    return  # a cache's size bound
                for t, v in zip(flat, node.value.elts, strict=True):
                    if not _bookkeeping(t):
                        self._visit(v, parents + [node, node.value], scope, stmt or node, fn_line)
                return
            if fn_line is not None and names and all((fn_line, n) in self._message_only for n in names):
                return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name in _SKIP_FUNCS:
                return
            body_first = node.body[0].lineno
            if isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant):
                body_first = node.body[1].lineno if len(node.body) > 1 else node.body[0].lineno
            outer = scope[0] in ("module", "class")
            # closures select by their outermost function; a signature selects by its body
            inner_scope = ("function", node.lineno, node.end_lineno) if outer else scope
            sig_scope = ("function", body_first, node.end_lineno) if outer else scope
            self._visit_signature(node, parents + [node], sig_scope)
            for s in node.body:
                self._visit(s, parents + [node], inner_scope, None, node.lineno if outer else fn_line)
            return
        if isinstance(node, ast.ClassDef):
            cls_scope = ("class", node.lineno, node.end_lineno) if scope[0] == "module" else scope
            for s in node.body:
                self._visit(s, parents + [node], cls_scope, None, fn_line)
            return
        if isinstance(node, ast.AnnAssign):
            if node.value is not None:
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool):
                    self._flip_bool(node.value, node, "value", None, "bool-default", scope, stmt)
                self._visit(node.value, parents + [node], scope, stmt, fn_line)
            return

        self._mutate(node, parent, parents, scope, stmt)

        # children, with per-field skips
        for name, value in ast.iter_fields(node):
            if isinstance(node, ast.Call) and name == "keywords":
                for kw in value:
                    if kw.arg in _NONMATH_KW:
                        continue
                    if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, bool):
                        self._flip_bool(kw.value, kw, "value", None, "bool-keyword", scope, stmt, label=kw.arg)
                    self._visit(kw.value, parents + [node, kw], scope, stmt, fn_line)
                continue
            if isinstance(node, ast.Call) and name == "args":
                _, cname = _call_name(node)
                for a in value:
                    if cname in _SHAPE_CALLS and (
                        _num(a) or (isinstance(a, ast.UnaryOp) and _num(a.operand)) or isinstance(a, ast.Tuple)
                    ):
                        continue  # a dimension or a shape
                    self._visit(a, parents + [node], scope, stmt, fn_line)
                continue
            if isinstance(node, ast.Subscript) and name == "slice":
                if isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
                    continue
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self._visit(item, parents + [node], scope, stmt, fn_line)
            elif isinstance(value, ast.AST):
                self._visit(value, parents + [node], scope, stmt, fn_line)

    def _visit_signature(self, fn, parents, scope):
        args = fn.args
        positional = args.posonlyargs + args.args
        pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
        pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
        for arg, default in pairs:
            if arg.arg in _NONMATH_KW:
                continue
            if isinstance(default, ast.Constant) and isinstance(default.value, bool):
                owner, fieldname, idx = self._locate(fn.args, default)
                self._flip_bool(default, owner, fieldname, idx, "bool-default", scope, fn, label=arg.arg)
            else:
                self._visit(default, parents + [fn.args], scope, fn, None)

    @staticmethod
    def _locate(owner, node):
        for name, value in ast.iter_fields(owner):
            if value is node:
                return owner, name, None
            if isinstance(value, list):
                for i, v in enumerate(value):
                    if v is node:
                        return owner, name, i
        raise LookupError

    def _setter(self, owner, fieldname, idx, new):
        old = getattr(owner, fieldname) if idx is None else getattr(owner, fieldname)[idx]

        def put(v):
            if idx is None:
                setattr(owner, fieldname, v)
            else:
                getattr(owner, fieldname)[idx] = v

        return (lambda: put(new)), (lambda: put(old))

    def _replace(self, node, parent, new, operator, description, scope, stmt):
        owner, fieldname, idx = self._locate(parent, node)
        apply, revert = self._setter(owner, fieldname, idx, new)
        self._emit(node, new, apply, revert, operator, description, scope, stmt)

    def _flip_bool(self, const, owner, fieldname, idx, operator, scope, stmt, label=None):
        if idx is None and fieldname != "value":
            owner, fieldname, idx = self._locate(owner, const)
        new = ast.Constant(not const.value)
        apply, revert = self._setter(owner, fieldname, idx, new)
        what = f"{label}={const.value} -> {label}={not const.value}" if label else f"{const.value} -> {not const.value}"
        self._emit(const, new, apply, revert, operator, what, scope, stmt)

    def _mutate(self, node, parent, parents, scope, stmt):  # noqa: C901
        short = _short
        if _num(node) and parent is not None:
            c = node.value
            if 0 < abs(c) <= TINY:
                return
            if c == 0:
                news = [type(c)(1)]
            elif c == 1:
                news = [type(c)(0), type(c)(2)]
            else:
                news = [c + 1, c * 2]
            for v in news:
                self._replace(node, parent, ast.Constant(v), "number", f"{c!r} -> {v!r}", scope, stmt)
        elif isinstance(node, ast.BinOp):
            if _is_string(node.left) or _is_string(node.right):
                return
            op = type(node.op)
            if op in _SWAPS:
                r = node.right
                if op in (ast.Add, ast.Sub) and _num(r) and r.value == 0:
                    return
                if op in (ast.Mult, ast.Div) and _num(r) and r.value == 1:
                    return
                new = ast.BinOp(node.left, _SWAPS[op](), node.right)
                desc = f"{short(node)} -> {short(new)}"
                self._replace(node, parent, new, "binop", desc, scope, stmt)
            elif op is ast.Pow:
                r = node.right
                exp = r.operand if isinstance(r, ast.UnaryOp) and isinstance(r.op, ast.USub) else r
                if _num(exp):
                    if r is exp and exp.value == 1:
                        return
                    new = ast.BinOp(node.left, ast.Pow(), ast.Constant(1))
                    self._replace(node, parent, new, "power", f"{short(node)} -> {short(new)}", scope, stmt)
                else:
                    new = ast.BinOp(node.left, ast.Mult(), node.right)
                    self._replace(node, parent, new, "power", f"{short(node)} -> {short(new)}", scope, stmt)
        elif isinstance(node, ast.AugAssign):
            op = type(node.op)
            if op in _SWAPS:
                new = ast.AugAssign(node.target, _SWAPS[op](), node.value)
                desc = f"{_OPSYM[op]}= -> {_OPSYM[_SWAPS[op]]}= in {short(node)}"
                owner, fieldname, idx = self._locate(parent, node)
                apply, revert = self._setter(owner, fieldname, idx, new)
                self._emit(node, new, apply, revert, "binop", desc, scope, stmt)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self._replace(
                node, parent, node.operand, "unary-minus", f"{short(node)} -> {short(node.operand)}", scope, stmt
            )
        elif isinstance(node, ast.Compare):
            if any(_is_string(x) for x in [node.left, *node.comparators]):
                return
            for i, op in enumerate(node.ops):
                if type(op) not in _CMPFLIPS:
                    continue
                for alt in _CMPFLIPS[type(op)]:
                    ops = list(node.ops)
                    ops[i] = alt()
                    new = ast.Compare(node.left, ops, node.comparators)
                    desc = f"{_CMPSYM[type(op)]} -> {_CMPSYM[alt]} in {short(node)}"
                    self._replace(node, parent, new, "compare", desc, scope, stmt)
        elif isinstance(node, ast.Call):
            owner, name = _call_name(node)
            f = node.func
            if name in _MINMAX and (owner is None and name in ("min", "max") or owner is not None):
                newf = (
                    ast.Name(_MINMAX[name], ast.Load())
                    if isinstance(f, ast.Name)
                    else ast.Attribute(f.value, _MINMAX[name], ast.Load())
                )
                new = ast.Call(newf, node.args, node.keywords)
                self._replace(node, parent, new, "min-max", f"{name} -> {_MINMAX[name]} in {short(node)}", scope, stmt)
            if name in _CLAMPS and any(k.arg in ("min", "max") for k in node.keywords):
                kws = [ast.keyword({"min": "max", "max": "min"}.get(k.arg, k.arg), k.value) for k in node.keywords]
                new = ast.Call(f, node.args, kws)
                self._replace(node, parent, new, "min-max", f"{short(node)} -> {short(new)}", scope, stmt)
            if name in ("sqrt", "square"):
                if owner in _PI_OWNERS and len(node.args) == 1 and not node.keywords:
                    inner = node.args[0]
                elif owner not in _PI_OWNERS and isinstance(f, ast.Attribute) and not node.args:
                    inner = f.value
                else:
                    inner = None
                if inner is not None:
                    self._replace(node, parent, inner, "power", f"{short(node)} -> {short(inner)}", scope, stmt)
        elif isinstance(node, ast.Attribute) and node.attr in ("pi", "tau") and isinstance(node.value, ast.Name):
            if node.value.id in _PI_OWNERS and isinstance(node.ctx, ast.Load):
                for new in (ast.BinOp(node, ast.Mult(), ast.Constant(2)), ast.BinOp(node, ast.Div(), ast.Constant(2))):
                    self._replace(node, parent, new, "pi", f"{short(node)} -> {short(new)}", scope, stmt)


def _short(node: ast.AST, limit: int = 70) -> str:
    s = ast.unparse(node).replace("\n", " ")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def module_files(root: Path, patterns: list[str]) -> list[Path]:
    base = root / "src" / "scoredyn"
    files: set[Path] = set()
    for pat in patterns:
        pat = pat.removeprefix("src/scoredyn/").removeprefix("scoredyn/")
        files.update(Path(p) for p in glob.glob(str(base / pat), recursive=True) if p.endswith(".py"))
    return sorted(files)


def generate(root: Path, patterns: list[str]) -> list[Mutant]:
    mutants: list[Mutant] = []
    for path in module_files(root, patterns):
        mutants.extend(_Generator(path, str(path.relative_to(root))).run())
    return mutants


# ----------------------------------------------------------------------------------------------------------
# test selection


def table_tests(root: Path, relfile: str) -> list[str]:
    """Test paths (relative to the root) that the table maps a source file to."""
    rel = relfile.removeprefix("src/scoredyn/")
    tests = next((t for pat, t in TEST_TABLE if fnmatch.fnmatch(rel, pat)), [f"tests/{rel.split('/')[0]}"])
    out: list[str] = []
    for t in tests:
        for p in sorted(glob.glob(str(root / t))):
            r = str(Path(p).relative_to(root))
            if r not in out:
                out.append(r)
    return out


class _ContextPlugin:
    """pytest plugin for the coverage run: one coverage context per test, durations and failures."""

    def __init__(self, cov):
        self.cov = cov
        self.durations: dict[str, float] = {}
        self.failed: set[str] = set()
        self.broad: dict[str, list[str]] = {}
        self.tests: list[str] = []

    def pytest_collection_modifyitems(self, items):
        for item in items:
            self.tests.append(item.nodeid)
            info = getattr(item, "_fixtureinfo", None)
            names = []
            if info is not None:
                for name, defs in info.name2fixturedefs.items():
                    if defs and defs[-1].scope not in ("function",):
                        names.append(name)
            self.broad[item.nodeid] = names

    def pytest_collectstart(self, collector):
        # a test module's import (objects built at module level, parametrize lists) counts for its tests
        if type(collector).__name__ == "Module":
            self.cov.switch_context("collect:" + collector.nodeid)

    def pytest_collectreport(self, report):
        self.cov.switch_context("")

    def pytest_runtest_setup(self, item):
        self.cov.switch_context(item.nodeid)

    def pytest_runtest_logreport(self, report):
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.failed:
            self.failed.add(report.nodeid)

    def pytest_runtest_logfinish(self, nodeid, location):
        self.cov.switch_context("")


def _collect_main(argv: list[str]) -> int:
    """Subprocess entry point: run tests under coverage, write {file: {line: [test index]}} as JSON."""
    import coverage
    import pytest

    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--include", nargs="+", required=True)
    p.add_argument("tests", nargs="+")
    a = p.parse_args(argv)
    cov = coverage.Coverage(data_file=None, include=a.include, config_file=False)
    plugin = _ContextPlugin(cov)
    cov.start()
    try:
        rc = pytest.main([*a.tests, "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-rfE"], plugins=[plugin])
    finally:
        cov.stop()
    data = cov.get_data()
    index = {t: i for i, t in enumerate(plugin.tests)}
    per_file: dict[str, list[int]] = {}
    for t, i in index.items():
        per_file.setdefault(t.split("::")[0], []).append(i)
    lines: dict[str, dict[int, list[int]]] = {}
    for f in data.measured_files():
        lines[f] = {}
        for ln, ctx in data.contexts_by_lineno(f).items():
            tests = {index[c] for c in ctx if c in index}
            for c in ctx:
                if c.startswith("collect:"):
                    tests.update(per_file.get(c.removeprefix("collect:"), ()))
            if tests:
                lines[f][ln] = sorted(tests)
    out = {
        "tests": plugin.tests,
        "durations": [plugin.durations.get(t, 0.0) for t in plugin.tests],
        "failed": sorted(plugin.failed),
        "broad": [plugin.broad.get(t, []) for t in plugin.tests],
        "lines": lines,
        "rc": int(rc),
    }
    Path(a.out).write_text(json.dumps(out))
    return 0


def _fingerprint(root: Path, files: list[str], tests: list[str]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([files, tests, sys.version, _MAP_FORMAT]).encode())
    paths = sorted(glob.glob(str(root / "src" / "scoredyn" / "**" / "*.py"), recursive=True))
    for t in tests:
        tp = root / t
        paths += sorted(glob.glob(str(tp / "**" / "*.py"), recursive=True)) if tp.is_dir() else [str(tp)]
    paths += [str(root / "tests" / "conftest.py")]
    for p in paths:
        if os.path.exists(p):
            h.update(p.encode())
            h.update(Path(p).read_bytes())
    return h.hexdigest()[:20]


_MAP_FORMAT = 2  # bump when the coverage run records something new


class CoverageMap:
    def __init__(self, root: Path, data: dict, src_root: Path):
        self.root = root
        self.tests: list[str] = data["tests"]
        self.durations: list[float] = data["durations"]
        self.failed = set(data["failed"])
        self.broad = data["broad"]
        self.lines: dict[str, dict[int, list[int]]] = {}
        for f, by_line in data["lines"].items():
            rel = str(Path(f).resolve().relative_to(src_root.resolve().parent))
            self.lines[rel] = {int(k): v for k, v in by_line.items()}

    @classmethod
    def build(cls, root: Path, files: list[str], tests: list[str], cache: Path | None) -> CoverageMap:
        key = _fingerprint(root, files, tests)
        if cache is None:
            base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scoredyn-mutation"
            cache = base / f"coverage-{key}.json"
        if cache.exists():
            data = json.loads(cache.read_text())
            if data.get("key") == key:
                print(f"coverage map: {cache} (cached)", file=sys.stderr)
                return cls(root, data, root / "src")
        cache.parent.mkdir(parents=True, exist_ok=True)
        include = [str((root / f).resolve()) for f in files]
        env = dict(os.environ, PYTHONPATH=str(root / "src"))
        t0 = time.time()
        print(f"coverage map: running {' '.join(tests)} under coverage ...", file=sys.stderr)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            out = tmp.name
        cmd = [sys.executable, str(Path(__file__).resolve()), "_collect", "--out", out, "--include", *include]
        subprocess.run([*cmd, "--", *tests], cwd=root, env=env, check=True, stdout=subprocess.DEVNULL)
        data = json.loads(Path(out).read_text())
        os.unlink(out)
        data["key"] = key
        cache.write_text(json.dumps(data))
        bad = data["failed"]
        print(f"coverage map: {len(data['tests'])} tests in {time.time() - t0:.0f} s -> {cache}", file=sys.stderr)
        if bad:
            print(f"coverage map: {len(bad)} tests fail unmutated and are never selected: {bad}", file=sys.stderr)
        return cls(root, data, root / "src")

    def select(self, m: Mutant, allowed: list[str]) -> list[str]:
        """The tests (node ids, fastest first) that execute the mutant's statement or scope."""
        by_line = self.lines.get(m.file, {})
        kind, first, last = m.scope
        if kind == "function" and m.lines[0] >= first:  # a statement inside a function body
            span = range(m.lines[0], m.lines[1] + 1)
        else:  # a signature, class-level or module-level statement
            span = range(first, last + 1)
        idx: set[int] = set()
        for ln in span:
            idx.update(by_line.get(ln, ()))
        prefixes = tuple(a if a.endswith(".py") else a.rstrip("/") + "/" for a in allowed)
        chosen = {i for i in idx if self.tests[i].startswith(prefixes) and self.tests[i] not in self.failed}
        # tests that share a module- or class-scoped fixture with a chosen test run with it
        extra = set()
        for i in chosen:
            if self.broad[i]:
                f = self.tests[i].split("::")[0]
                shared = set(self.broad[i])
                for j, t in enumerate(self.tests):
                    if t.startswith(f + "::") and shared & set(self.broad[j]) and t not in self.failed:
                        extra.add(j)
        chosen |= extra
        return [self.tests[i] for i in sorted(chosen, key=lambda i: (self.durations[i], i))]

    def seconds(self, nodeids: list[str]) -> float:
        pos = {t: i for i, t in enumerate(self.tests)}
        return sum(self.durations[pos[t]] for t in nodeids if t in pos)


# ----------------------------------------------------------------------------------------------------------
# running


@dataclass
class Result:
    id: str
    status: str  # killed | survived | timeout | no-tests | error
    seconds: float
    tests: int
    killed_by: str = ""
    detail: str = ""


_LIVE: set[subprocess.Popen] = set()  # test runs in progress, killed if the tool is interrupted


def _kill_live(*_):
    for proc in list(_LIVE):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sys.exit(143)


def _run(cmd, cwd, env, timeout) -> tuple[int | None, str]:
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    _LIVE.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out
    except BaseException:  # interrupted: take the test run (its own session) down too
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        _LIVE.discard(proc)


class Worker:
    """A private copy of ``<root>/src`` in which one mutant at a time is written."""

    def __init__(self, root: Path, n: int):
        self.root = root
        self.dir = Path(tempfile.mkdtemp(prefix=f"scoredyn-mutation-{n}-"))
        shutil.copytree(root / "src", self.dir / "src", symlinks=True, ignore=shutil.ignore_patterns("*.egg-info"))
        self.env = dict(os.environ, PYTHONPATH=str(self.dir / "src"), PYTHONDONTWRITEBYTECODE="1")
        probe = [sys.executable, "-c", "import scoredyn; print(scoredyn.__file__)"]
        where = subprocess.run(probe, env=self.env, cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        if not where.startswith(str(self.dir)):
            raise RuntimeError(f"PYTHONPATH does not win over the installed scoredyn ({where})")

    def run(self, m: Mutant, tests: list[str], timeout: float) -> Result:
        path = self.dir / m.file
        original = path.read_text()
        stem = path.stem
        for pyc in (path.parent / "__pycache__").glob(f"{stem}.*.pyc"):
            pyc.unlink()
        path.write_text(m.source)
        t0 = time.time()
        try:
            rc, out = _run([sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests], self.root, self.env, timeout)
        finally:
            path.write_text(original)
            for pyc in (path.parent / "__pycache__").glob(f"{stem}.*.pyc"):
                pyc.unlink()
        dt = time.time() - t0
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
        killed_by = failed[0] if failed else ""
        if rc is None:
            return Result(m.id, "timeout", dt, len(tests), detail=f"over {timeout:.0f} s")
        if rc == 0:
            return Result(m.id, "survived", dt, len(tests))
        collect_errors = re.findall(r"^ERROR collecting (\S+)", out, re.M) or re.findall(
            r"_ ERROR collecting (\S+) _", out
        )
        if rc != 0 and collect_errors:  # the mutated code raised while a test module was imported
            return Result(m.id, "killed", dt, len(tests), killed_by=f"collecting {collect_errors[0]}")
        if rc in (4, 5):  # usage error, no tests collected: a problem of the runner, not a kill
            return Result(m.id, "error", dt, len(tests), detail=out[-800:])
        if not killed_by:
            tail = [ln for ln in out.strip().splitlines() if ln.strip()]
            killed_by = f"rc={rc}: " + (tail[-1][:200] if tail else "")
        return Result(m.id, "killed", dt, len(tests), killed_by=killed_by)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def summarize(results: list[dict]) -> dict:
    count = {s: sum(r["status"] == s for r in results) for s in ("killed", "timeout", "survived", "no-tests", "error")}
    detected = count["killed"] + count["timeout"]
    n = detected + count["survived"] + count["no-tests"]
    lo, hi = wilson(detected, n)
    secs = [r["seconds"] for r in results if r["status"] != "no-tests"]
    return {
        **count,
        "scored": n,
        "score": detected / n if n else None,
        "wilson95": [lo, hi],
        "mean_seconds_per_run": sum(secs) / len(secs) if secs else None,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_collect":
        return _collect_main(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root")
    p.add_argument("--modules", nargs="+", default=DEFAULT_MODULES, help="globs relative to src/scoredyn")
    p.add_argument("--sample", type=int, default=None, help="run a seeded random sample of K mutants")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, choices=[1, 2, 3, 4])
    p.add_argument("--out", type=Path, default=None, help="results JSON (rewritten after every mutant)")
    p.add_argument("--list", action="store_true", help="print the mutants and exit")
    p.add_argument("--resume", action="store_true", help="keep the results already in --out")
    p.add_argument("--timeout-factor", type=float, default=3.0, help="limit = 20 s + factor x the tests' time")
    p.add_argument("--coverage-map", type=Path, default=None, help="cache file for the per-test coverage")
    p.add_argument("--no-coverage-select", action="store_true", help="run the table's test paths in full")
    a = p.parse_args(argv)
    root = a.root.resolve()
    signal.signal(signal.SIGTERM, _kill_live)  # a plain kill also ends the test run in progress

    mutants = generate(root, a.modules)
    mutants.sort(key=lambda m: m.id)
    total = len(mutants)
    if a.sample is not None and a.sample < total:
        mutants = sorted(random.Random(a.seed).sample(mutants, a.sample), key=lambda m: m.id)
    if a.list:
        for m in mutants:
            print(f"{m.file}:{m.line}:{m.col}\t{m.operator}\t{m.description}")
        print(f"{len(mutants)} of {total} mutants", file=sys.stderr)
        return 0

    files = sorted(str(p.relative_to(root)) for p in module_files(root, a.modules))
    allowed = {f: table_tests(root, f) for f in files}
    union = sorted({t for ts in allowed.values() for t in ts})
    cmap = None
    if not a.no_coverage_select:
        cmap = CoverageMap.build(root, files, union, a.coverage_map)

    done: dict[str, dict] = {}
    if a.resume and a.out and a.out.exists():
        done = {r["id"]: r for r in json.loads(a.out.read_text())["mutants"]}
    meta = {
        "root": str(root),
        "commit": subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "command": "python tools/mutation.py " + " ".join(argv),
        "modules": a.modules,
        "mutants_total": total,
        "sample": a.sample,
        "seed": a.seed,
        "jobs": a.jobs,
        "coverage_select": cmap is not None,
    }
    lock = threading.Lock()
    records: dict[str, dict] = dict(done)

    def save():
        if a.out is None:
            return
        ordered = [records[m.id] for m in mutants if m.id in records]
        a.out.write_text(json.dumps({"meta": meta, "summary": summarize(ordered), "mutants": ordered}, indent=1))

    todo = [m for m in mutants if m.id not in done]
    workers: queue.Queue[Worker] = queue.Queue()
    made = [Worker(root, i) for i in range(min(a.jobs, max(1, len(todo))))]
    for w in made:
        workers.put(w)
    t_start = time.time()

    def one(m: Mutant):
        if cmap is not None:
            tests = cmap.select(m, allowed[m.file])
            budget = 20 + a.timeout_factor * cmap.seconds(tests)
        else:
            tests = allowed[m.file]
            budget = 1800.0
        if not tests:
            res = Result(m.id, "no-tests", 0.0, 0, detail="no selected test executes this code")
        else:
            w = workers.get()
            try:
                res = w.run(m, tests, budget)
            finally:
                workers.put(w)
        rec = {**m.public(), **{k: v for k, v in asdict(res).items() if k != "id"}}
        with lock:
            records[m.id] = rec
            n = len(records)
            save()
            print(
                f"[{n}/{len(mutants)}] {res.status:8s} {res.seconds:6.1f}s {res.tests:4d} tests  "
                f"{m.file}:{m.line} {m.description}",
                file=sys.stderr,
                flush=True,
            )

    try:
        with ThreadPoolExecutor(max_workers=a.jobs) as pool:
            list(pool.map(one, todo))
    finally:
        for w in made:
            w.close()
    ordered = [records[m.id] for m in mutants if m.id in records]
    s = summarize(ordered)
    save()
    print(json.dumps(s, indent=1))
    print(f"wall time {time.time() - t_start:.0f} s", file=sys.stderr)
    for r in ordered:
        if r["status"] in ("survived", "no-tests"):
            print(f"{r['status']:8s} {r['file']}:{r['line']}  {r['operator']:11s} {r['description']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
