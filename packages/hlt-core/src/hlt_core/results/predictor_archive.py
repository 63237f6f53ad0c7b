"""Load a received ``predictor.pt2`` so that nothing in it can run as code.

``torch.export.load`` trusts its archive (torch's docstring says never to load an
untrusted one), and more than its pickles act: a weight or constant marked
``use_pickle`` is unpickled with ``weights_only=False``; the sample inputs are a pickle
that falls back to ``weights_only=False``; ``guards_code`` is Python source that
``.module()`` compiles and runs; every symbolic-shape ``expr_str`` goes through
``sympy.sympify``, which evaluates Python; an AOTInductor entry loads a shared library.

Why not a second copy of the weights in safetensors: torch 2.6+ already stores each plain
tensor as raw bytes described by JSON (``use_pickle: false``), which is as inert as
safetensors, so a second copy would double the export and guard nothing more; the code
paths above are what must be closed. So the archive is read into memory once and checked
before torch deserialises anything: only the entries a torch.export program of plain
tensors holds; every weight and constant a raw tensor; every guard and shape expression
within a small grammar (no names, attributes or calls beyond sympy's shape functions);
every graph operator an ATen operator (except the two that touch files), Python's
arithmetic on sizes, or control flow over subgraphs checked the same way. torch then
loads a copy rebuilt from the checked entries alone, with empty sample inputs (``hlt
predict`` never needs them). Anything else is one line naming the file (``UserError``).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from hlt_core.errors import UserError

PROGRAM = "models/model.json"
SAMPLE_INPUTS = "data/sample_inputs/model.pt"
CONFIGS = {
    "data/weights/model_weights_config.json": "weight",
    "data/constants/model_constants_config.json": "tensor",
}
ENTRY = re.compile(
    r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|"
    r"models/model\.json|data/sample_inputs/model\.pt|data/weights/weight_\d+|"
    r"data/constants/tensor_\d+|data/weights/model_weights_config\.json|"
    r"data/constants/model_constants_config\.json"
)
# a guard compares input sizes: L['inputs'].size()[1] <= 24
GUARD = re.compile(
    r"(?:L\['\w+'\]|\.size\(\)|\.stride\(\)|\.storage_offset\(\)|\[\d+\]|\d+"
    r"|==|!=|<=|>=|[<>+\-*/%()]|\s+|\b(?:and|or|not)\b)*"
)
SYMPY_TOKEN = re.compile(
    r"'[A-Za-z_]\w*'|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[A-Za-z_]\w*|\*\*|//|==|!=|<=|>="
    r"|[-+*/%(),<>=]|\s+"
)
SYMPY_NAMES = {
    "Symbol", "Integer", "Add", "Mul", "Pow", "Float", "Rational", "True", "False",
    "positive", "integer", "nonnegative", "real", "oo", "Max", "Min", "Abs",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "FloorDiv", "ModularIndexing",
    "Where", "PythonMod", "Mod",
    "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv", "LShift", "RShift", "PowByNatural",
    "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
}  # fmt: skip
SYMBOL = re.compile(r"[a-z]+\d+")  # s0, u12: the names torch gives sizes
OPERATOR = re.compile(
    r"torch\.ops\.aten\.\w+\.\w+|_operator\.(?:getitem|add|sub|mul|floordiv|truediv|mod|pow"
    r"|neg|pos|abs|eq|ne|lt|le|gt|ge|and_|or_|not_)|torch\.sym_(?:int|float|max|min|not|sqrt"
    r"|ite|sum)|math\.(?:trunc|ceil|floor|sqrt)"
    # control flow whose subgraphs are checked like the graph itself
    r"|torch\.ops\.higher_order\.(?:wrap_with_autocast|wrap_with_set_grad_enabled|cond"
    r"|while_loop|scan|map_impl)"
)
FILE_OPERATORS = {"torch.ops.aten.from_file", "torch.ops.aten.save"}


def _refuse(path: Path, why: str) -> UserError:
    return UserError(f"{path}: refused, {why}")


def _checked_entries(path: Path, archive: zipfile.ZipFile) -> dict[str, bytes]:
    """Every entry by its name inside the archive's one top folder, once checked."""
    entries: dict[str, bytes] = {}
    tops = set()
    for info in archive.infolist():
        top, _, name = info.filename.partition("/")
        tops.add(top)
        if not ENTRY.fullmatch(name):
            raise _refuse(
                path, f"it holds {info.filename!r}, not part of a torch.export program of tensors"
            )
        entries[name] = archive.read(info)
    if len(tops) != 1:
        raise _refuse(path, f"it holds {len(tops)} top folders, a .pt2 archive has one")
    for name in (PROGRAM, *CONFIGS):
        if name not in entries:
            raise _refuse(path, f"it lacks {name} (not a torch.export archive?)")
    return entries


def _check_tensors(path: Path, name: str, config: Any, prefix: str) -> None:
    """Each weight or constant is a raw tensor record, never a pickle or an object."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise _refuse(path, f"{name} is not a payload config")
    for key, meta in config["config"].items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise _refuse(path, f"{key!r} is stored as a pickle (use_pickle), which can run code")
        if not re.fullmatch(rf"{prefix}_\d+", str(meta.get("path_name"))):
            raise _refuse(path, f"{key!r} is not a plain tensor ({meta.get('path_name')!r})")


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _check_expression(path: Path, text: str) -> None:
    """A size expression sympy will evaluate: only sympy's shape functions by name."""
    tokens = SYMPY_TOKEN.findall(text)
    names = [t for t in tokens if t[0].isalpha() or t[0] == "_"]
    if "".join(tokens) != text or any(
        n not in SYMPY_NAMES and not SYMBOL.fullmatch(n) for n in names
    ):
        raise _refuse(path, f"the shape expression {text[:80]!r} is not a plain size expression")


def _check_operator(path: Path, target: str) -> None:
    if not OPERATOR.fullmatch(target) or target.rsplit(".", 1)[0] in FILE_OPERATORS:
        raise _refuse(path, f"the graph calls {target[:80]!r}, not an allowed tensor operator")


def _check_program(path: Path, text: bytes) -> None:
    try:
        program = json.loads(text)
    except ValueError:
        raise _refuse(path, f"{PROGRAM} is not JSON") from None
    if not isinstance(program, dict):
        raise _refuse(path, f"{PROGRAM} is not a JSON object")
    for guard in program.get("guards_code") or []:
        if not isinstance(guard, str) or not GUARD.fullmatch(guard):
            raise _refuse(path, f"the guard {str(guard)[:80]!r} is not a comparison of sizes")
    for key, value in _walk(program):
        if key == "expr_str":
            _check_expression(path, str(value))
        elif key in ("target", "as_operator") and isinstance(value, str):
            _check_operator(path, value)
        elif key == "custom_obj_values" and value:
            raise _refuse(path, "the graph holds script objects, which can run code")


def _rebuilt(entries: dict[str, bytes]) -> io.BytesIO:
    """A fresh archive of the checked entries, sample inputs emptied (never unpickled)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(f"archive/{name}", b"" if name == SAMPLE_INPUTS else data)
    buffer.seek(0)
    return buffer


def load_predictor_archive(path: Path) -> Callable[..., torch.Tensor]:
    """The predictor module of the ``.pt2`` at ``path``, checked first (see the module doc)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise _refuse(path, f"entry {bad!r} is damaged (checksum)")
            entries = _checked_entries(path, archive)
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise UserError(
            f"{path}: not a readable .pt2 archive (truncated or damaged?): {error}"
        ) from None
    for name, prefix in CONFIGS.items():
        try:
            config = json.loads(entries[name])
        except ValueError:
            raise _refuse(path, f"{name} is not JSON") from None
        _check_tensors(path, name, config, prefix)
    _check_program(path, entries[PROGRAM])
    try:
        return torch.export.load(_rebuilt(entries)).module()
    except Exception as error:  # torch raises many types for a damaged program
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        raise UserError(f"{path}: not a loadable torch.export program: {first}") from None
