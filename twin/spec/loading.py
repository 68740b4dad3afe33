"""Reading the files users write (topologies, campaigns, schedules): one path from a file name to
a validated model, so that every file's problems read the same way, one line each:

    FILE: line N: field.path: reason        (or FILE: field.path: reason when no line is known)

Items of a list are named by their ``name`` (or ``a-b`` for a link) where they have one, as in
``sites[1:wuhan].workers``. Checks that every input file needs (its size, its encoding, duplicate
keys, nesting depth) belong in ``read_document``, once for all of them; the CSVs the twin reads back
(campaign results, determinism rows) go through ``read_table``, with the same file checks.

Every limit is a named constant next to what enforces it; docs/topology.md ("Limits of input
files") lists them all with their reasons.
"""

from __future__ import annotations

import collections
import csv
import io
import math
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from twin.errors import InputError

Loc = tuple[Union[str, int], ...]  # a field's place in a document, as pydantic gives it
M = TypeVar("M", bound=BaseModel)

# The largest file users write: 30x the largest shipped one (fntf-40city.yaml, 7.9 KB) and 2.5x a
# topology at every limit of twin/spec/topology.py (~100 KB); PyYAML reads ~0.2 MB/s here, so
# this keeps a file to about a second.
MAX_FILE_BYTES = 256 * 1024
# The deepest nesting of lists and mappings: the files' own go 5 deep; YAML's composer and
# pydantic recurse per level, and Python's stack ends near 300.
MAX_NESTING = 20
# Values in one file with aliases expanded: a file at MAX_FILE_BYTES holds ~30,000; aliases may
# share a value, not multiply it (a few lines of anchors can stand for 10^9 values).
MAX_VALUES = 100_000
# A number written with more digits is no value of any field (Python refuses ints of 4,300).
MAX_NUMBER_CHARS = 100
# Problems listed for one file; the rest are counted in one more line.
MAX_PROBLEMS = 20
# The CSVs the twin reads back: a campaign at its largest plan (MAX_POINTS rows of ~600 bytes)
# is 0.6 MB; this leaves room for 25 attempts of each of its points.
MAX_CSV_BYTES = 16 * 1024 * 1024


class FileModel(BaseModel):
    """The base of every model of a file users write: an unknown field is refused (a typo must
    never be ignored in silence), no number is inf or nan, and a validated model is not changed
    afterwards."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Document:
    """A parsed input file: its data and, when it was read from text, the YAML nodes that say on
    which line each value stands."""

    source: str
    data: Any
    root: Optional[yaml.Node] = None

    def problem(self, loc: Loc, reason: str) -> str:
        """One line naming the file, the line (when known), the field and the reason."""
        line = self.line(loc)
        where = f"line {line}: " if line else ""
        return f"{self.source}: {where}{field_path(loc, self.data)}: {reason}"

    def line(self, loc: Loc) -> Optional[int]:
        """The line of the field at ``loc``; of the nearest enclosing field if it is missing
        from the file; None at the top level or without the text."""
        node, line = self.root, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
                if found is None:
                    break
                line, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line


def read_bytes(path: str | Path, limit: int) -> bytes:
    """The bytes of an input file, at most ``limit`` of them; a file that cannot be read or is
    larger is one line naming it. Opened without blocking, so a FIFO with no writer reads as
    empty instead of hanging, and read to one byte past the limit, so a device such as
    /dev/zero is refused too."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError([f"{path}: cannot read file: {exc.strerror}"]) from None
    except ValueError as exc:  # a name the system cannot take, e.g. with a NUL byte
        raise InputError([f"{path!r}: cannot read file: {exc}"]) from None
    try:
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise InputError([f"{path}: cannot read file: {exc.strerror}"]) from None
    if len(raw) > limit:
        raise InputError([f"{path}: larger than {limit // 1024} KiB, the most the twin reads from "
                          f"such a file"])
    return raw


def read_input(path: str | Path, limit: int = MAX_FILE_BYTES) -> str:
    """The text of an input file (read_bytes): at most ``limit`` bytes, UTF-8 (a BOM is
    dropped), no NUL byte; anything else is one line naming the file."""
    path = Path(path)
    raw = read_bytes(path, limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError([f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)"]) from None
    if "\0" in text:
        raise InputError([f"{path}: line {text.count(chr(10), 0, text.index(chr(0))) + 1}: "
                          f"a NUL byte; not a text file"])
    return text.removeprefix("\ufeff")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing lists and mappings nested more than MAX_NESTING deep while
    it composes (its composer recurses once per level)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent: Optional[yaml.Node], index: Any) -> Optional[yaml.Node]:
        if self.depth >= MAX_NESTING and self.check_event(yaml.SequenceStartEvent,
                                                          yaml.MappingStartEvent):
            raise _Refused(self.peek_event().start_mark.line + 1,
                           f"nested deeper than {MAX_NESTING} levels of lists and mappings")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Refused(Exception):
    """What read_document refuses in a file that is valid YAML: at a line, for a reason."""

    def __init__(self, line: int, reason: str):
        super().__init__(reason)
        self.line, self.reason = line, reason


def read_document(path: str | Path) -> Document:
    """Read and parse a YAML (or JSON) file; a file that cannot be read or parsed, or that holds
    what no input file needs (duplicate keys, deep nesting, aliases that multiply values), is
    one line."""
    path = Path(path)
    text = read_input(path)
    loader: Optional[_Loader] = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        duplicates: list[tuple[Loc, str]] = []
        if root is not None:
            _check_nodes(root)
            duplicates = _duplicate_keys(root)  # before construction flattens merge keys
        data = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise InputError([f"{path}: line {line}: not valid YAML: character #x{exc.character:04x} "
                          f"is not allowed"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError([f"{path}: {where}not valid YAML: {reason}"]) from None
    except _Refused as exc:
        raise InputError([f"{path}: line {exc.line}: {exc.reason}"]) from None
    except (ValueError, OverflowError) as exc:  # a value PyYAML cannot build, e.g. a huge date
        raise InputError([f"{path}: not valid YAML: {str(exc).splitlines()[0]}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    doc = Document(str(path), data, root)
    if duplicates:
        raise InputError(_at_most(str(path), [doc.problem(loc, reason) for loc, reason in duplicates]))
    return doc


_MERGE = "tag:yaml.org,2002:merge"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_nodes(root: yaml.Node) -> None:
    """Refuse a node graph that expands to more than MAX_VALUES values or MAX_NESTING levels,
    that refers to itself (an alias inside its own anchor), or that holds a number of more than
    MAX_NUMBER_CHARS characters. Iterative, and each shared node is counted once per use without
    walking it again, so an adversarial file costs time in its size only."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if finished:
            on_path.discard(key)
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            if size[key] > MAX_VALUES:
                raise _Refused(line, f"holds more than {MAX_VALUES:,} values (aliases "
                                     f"expanded); no input file needs that many")
            if depth[key] > MAX_NESTING:
                raise _Refused(line, f"nested deeper than {MAX_NESTING} levels of lists and "
                                     f"mappings (its aliases expanded)")
            continue
        if key in size:
            continue
        if isinstance(node, yaml.ScalarNode):
            if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
                raise _Refused(line, f"a number of {len(node.value)} characters; at most "
                                     f"{MAX_NUMBER_CHARS}")
            size[key], depth[key] = 1, 0
            continue
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in on_path:
                raise _Refused(kid.start_mark.line + 1, "an alias inside its own anchor: the value "
                                                         "would contain itself")
            if id(kid) not in size:
                stack.append((kid, False))


def _duplicate_keys(root: yaml.Node) -> list[tuple[Loc, str]]:
    """Keys given twice in one mapping (YAML keeps the last in silence: a ``workers:`` written
    twice would go unnoticed). Merge keys (``<<``) may be overridden; they are not compared."""
    out: list[tuple[int, Loc, str]] = []
    seen_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, Loc]] = [(root, ())]
    while stack:
        node, loc = stack.pop()
        if id(node) in seen_nodes:  # an alias: its anchor's keys are checked where it stands
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((kid, (*loc, i)) for i, kid in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    continue
                if key.tag == _MERGE:
                    continue
                line = key.start_mark.line + 1
                ident = (key.tag, key.value)
                if ident in first:
                    out.append((line, (*loc, key.value), f"given twice (lines {first[ident]} and "
                                                         f"{line}); a key may appear once"))
                else:
                    first[ident] = line
                stack.append((value, (*loc, key.value)))
    return [(loc, reason) for _, loc, reason in sorted(out, key=lambda p: p[0])]


def _at_most(source: str, problems: list[str]) -> list[str]:
    """The first MAX_PROBLEMS problems, then one line counting the others."""
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = len(problems) - MAX_PROBLEMS
    return problems[:MAX_PROBLEMS] + [f"{source}: {rest} more problem{'s' * (rest > 1)} not shown"]


def validate(model: type[M], doc: Document, context: Optional[dict[str, Any]] = None) -> M:
    """The document's data as ``model``, or InputError with one line per problem."""
    if not isinstance(doc.data, dict):
        required = [n for n, f in model.model_fields.items() if f.is_required()]
        raise InputError([doc.problem((), f"expected a mapping with {', '.join(required)}")])
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise InputError(_at_most(doc.source, [doc.problem(err["loc"], _reason(err, model))
                                               for err in exc.errors()])) from None


def at_most(v: Any, limit: int, what: str, why: str) -> Any:
    """``v`` unless it is a list longer than ``limit``: then ValueError with the count, the limit
    and ``why`` (checked before the items, so a long list costs no time)."""
    if isinstance(v, list) and len(v) > limit:
        raise ValueError(f"{len(v)} {what}; at most {limit} ({why})")
    return v


def field_path(loc: Loc, data: Any) -> str:
    """pydantic's location as 'sites[1:wuhan].workers': list items named where they have one."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = f"[{part}]"
            if isinstance(node, list) and 0 <= part < len(node) and isinstance(node[part], dict):
                item = node[part]
                name = item.get("name") or (f"{item.get('a')}-{item.get('b')}" if "a" in item else None)
                if name:
                    label = f"[{part}:{name}]"
            out += label
        else:
            name = str(part)
            if not name.isidentifier():
                name = repr(name)  # keys from the file may hold newlines or spaces
            out += ("." if out else "") + name
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out or "(top level)"


def _reason(err: Any, model: type[BaseModel]) -> str:
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, err["loc"][:-1])
        return f"unknown field (known: {', '.join(known)})" if known else "unknown field"
    return str(err["msg"]).removeprefix("Value error, ")


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The fields of the model at ``loc``, for 'unknown field' messages; [] where none is."""
    tp: Any = model
    for part in loc:
        if _is_model(tp) and isinstance(part, str) and part in tp.model_fields:
            tp = _bare(tp.model_fields[part].annotation)
        elif isinstance(part, int) and typing.get_origin(tp) is list:
            tp = _bare(typing.get_args(tp)[0])
        else:
            return []
    return list(tp.model_fields) if _is_model(tp) else []


def _bare(tp: Any) -> Any:
    """The type inside Annotated[...] and Optional[...]."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


@dataclass(frozen=True)
class Table:
    """A CSV the twin reads back (its own results): the header, the rows as dicts, and the line
    each row ends on, so that a bad value is one line naming the file, the line and the column."""

    source: str
    header: list[str]
    rows: list[dict[str, str]]
    lines: list[int]

    def problem(self, index: int, column: str, reason: str) -> str:
        return f"{self.source}: line {self.lines[index]}: {column}: {reason}"

    def require_numbers(self, columns: Iterable[str], which: Callable[[dict[str, str]], bool],
                        blank: Iterable[str] = ()) -> None:
        """Refuse a row (of those ``which`` picks) whose ``columns`` are not finite numbers; the
        columns in ``blank`` may also be empty."""
        columns, blank = list(columns), set(blank)
        problems = []
        for i, row in enumerate(self.rows):
            if not which(row):
                continue
            for col in columns:
                value = row[col]
                if value == "" and col in blank:
                    continue
                try:
                    ok = math.isfinite(float(value))
                except ValueError:
                    ok = False
                if not ok:
                    problems.append(self.problem(i, col, f"{value[:40]!r} is not a number"))
        if problems:
            raise InputError(_at_most(self.source, problems))


def read_table(path: str | Path, required: Iterable[str], kind: str) -> Table:
    """A CSV with a header naming at least the ``required`` columns (``kind`` says what it
    should be, for the message); a file that is not such a CSV is one line."""
    text = read_input(path, MAX_CSV_BYTES)
    source = str(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[dict[str, str]] = []
    lines: list[int] = []
    try:
        header = next(reader, None)
        if not header:
            raise InputError([f"{source}: empty; not {kind}"])
        columns = collections.Counter(header)
        missing = [c for c in required if c not in columns]
        if missing:
            raise InputError([f"{source}: line 1: not {kind}: no column "
                              f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"])
        twice = sorted(c for c, n in columns.items() if n > 1)
        if twice:
            raise InputError([f"{source}: line 1: column {', '.join(twice)} given twice"])
        for record in reader:
            if not record:
                continue  # a blank line
            if len(record) != len(header):
                raise InputError([f"{source}: line {reader.line_num}: {len(record)} fields, the "
                                  f"header has {len(header)}"])
            rows.append(dict(zip(header, record)))
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise InputError([f"{source}: line {reader.line_num}: not valid CSV: {exc}"]) from None
    return Table(source, header, rows, lines)
