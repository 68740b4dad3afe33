"""Reading the files users write (topologies, campaigns, schedules): one path from a file name to
a validated model, so that every file's problems read the same way, one line each:

    FILE: line N: field.path: reason        (or FILE: field.path: reason when no line is known)

Items of a list are named by their ``name`` (or ``a-b`` for a link) where they have one, as in
``sites[1:wuhan].workers``. Checks that every input file needs (its size, its encoding, duplicate
keys, nesting depth) belong in ``read_document``, once for all of them.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TypeVar, Union

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from twin.errors import InputError

Loc = tuple[Union[str, int], ...]  # a field's place in a document, as pydantic gives it
M = TypeVar("M", bound=BaseModel)


class FileModel(BaseModel):
    """The base of every model of a file users write: an unknown field is refused (a typo must
    never be ignored in silence) and a validated model is not changed afterwards."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


def read_document(path: str | Path) -> Document:
    """Read and parse a YAML (or JSON) file; a file that cannot be read or parsed is one line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError([f"{path}: cannot read file: {exc.strerror}"]) from None
    except ValueError as exc:  # a name the system cannot take, e.g. with a NUL byte
        raise InputError([f"{path!r}: cannot read file: {exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError([f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded)"]) from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError([f"{path}: {where}not valid YAML: {reason}"]) from None
    finally:
        loader.dispose()
    return Document(str(path), data, root)


def validate(model: type[M], doc: Document, context: Optional[dict[str, Any]] = None) -> M:
    """The document's data as ``model``, or InputError with one line per problem."""
    if not isinstance(doc.data, dict):
        required = [n for n, f in model.model_fields.items() if f.is_required()]
        raise InputError([doc.problem((), f"expected a mapping with {', '.join(required)}")])
    try:
        return model.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise InputError([doc.problem(err["loc"], _reason(err, model)) for err in exc.errors()]) \
            from None


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
