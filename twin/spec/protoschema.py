"""Message classes from a .proto file at run time, without protoc or generated code.

The twin's schemas (``chakra_et.proto``) are the one source of their messages: this module reads
the subset of proto3 they are written in (messages, enums, oneofs, repeated fields, scalar, enum
and message field types, ``//`` comments) into a ``FileDescriptorProto`` and lets the protobuf
runtime build the classes from it. Nothing is generated on a fresh machine, so nothing can be
stale; anything outside the subset is refused with its line, which only the schema's author sees.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
SCALARS = {"double": _F.TYPE_DOUBLE, "float": _F.TYPE_FLOAT, "int32": _F.TYPE_INT32,
           "int64": _F.TYPE_INT64, "uint32": _F.TYPE_UINT32, "uint64": _F.TYPE_UINT64,
           "sint32": _F.TYPE_SINT32, "sint64": _F.TYPE_SINT64, "fixed32": _F.TYPE_FIXED32,
           "fixed64": _F.TYPE_FIXED64, "sfixed32": _F.TYPE_SFIXED32, "sfixed64": _F.TYPE_SFIXED64,
           "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES}
_TOKEN = re.compile(r'"[^"\n]*"|[A-Za-z_][\w.]*|\d+|[{}=;]|\S')


class SchemaError(ValueError):
    """The .proto file uses something this reader does not; names the line."""


class _Tokens:
    def __init__(self, text: str, source: str):
        self.items: list[tuple[str, int]] = []
        for n, line in enumerate(text.splitlines(), 1):
            self.items += [(t, n) for t in _TOKEN.findall(line.split("//", 1)[0])]
        self.pos, self.source = 0, source

    def peek(self) -> str:
        return self.items[self.pos][0] if self.pos < len(self.items) else ""

    def take(self, want: str | None = None) -> str:
        if self.pos >= len(self.items):
            raise SchemaError(f"{self.source}: ends early" + (f", expected {want!r}" if want else ""))
        tok, line = self.items[self.pos]
        if want is not None and tok != want:
            raise SchemaError(f"{self.source}:{line}: expected {want!r}, found {tok!r}")
        self.pos += 1
        return tok

    def number(self) -> int:
        tok = self.take()
        if not tok.isdigit():
            raise SchemaError(f"{self.source}:{self.items[self.pos - 1][1]}: {tok!r} is not a number")
        return int(tok)


def parse(text: str, source: str = "<proto>") -> descriptor_pb2.FileDescriptorProto:
    """The file descriptor of a .proto text in the subset above."""
    toks = _Tokens(text, source)
    fd = descriptor_pb2.FileDescriptorProto(name=Path(source).name, syntax="proto3")
    pending: list[tuple[Any, str]] = []  # fields whose type is a message or enum name
    while toks.peek():
        word = toks.take()
        if word == "syntax":
            toks.take("=")
            if toks.take() != '"proto3"':
                raise SchemaError(f"{source}: only proto3 is read")
            toks.take(";")
        elif word == "package":
            fd.package = toks.take()
            toks.take(";")
        elif word == "enum":
            _enum(toks, fd.enum_type.add())
        elif word == "message":
            _message(toks, fd.message_type.add(), pending)
        else:
            raise SchemaError(f"{source}:{toks.items[toks.pos - 1][1]}: {word!r} is not read here")
    enums = {e.name for e in fd.enum_type}
    messages = {m.name for m in fd.message_type}
    for field, type_name in pending:
        if type_name in enums:
            field.type = _F.TYPE_ENUM
        elif type_name in messages:
            field.type = _F.TYPE_MESSAGE
        else:
            raise SchemaError(f"{source}: field {field.name}: unknown type {type_name!r}")
        field.type_name = f".{fd.package}.{type_name}" if fd.package else f".{type_name}"
    return fd


def _enum(toks: _Tokens, enum: Any) -> None:
    enum.name = toks.take()
    toks.take("{")
    while toks.peek() != "}":
        value = enum.value.add(name=toks.take())
        toks.take("=")
        value.number = toks.number()
        toks.take(";")
    toks.take("}")


def _message(toks: _Tokens, msg: Any, pending: list[tuple[Any, str]]) -> None:
    msg.name = toks.take()
    toks.take("{")
    while toks.peek() != "}":
        if toks.peek() == "oneof":
            toks.take()
            index = len(msg.oneof_decl)
            msg.oneof_decl.add(name=toks.take())
            toks.take("{")
            while toks.peek() != "}":
                _field(toks, msg, pending).oneof_index = index
            toks.take("}")
        else:
            _field(toks, msg, pending)
    toks.take("}")


def _field(toks: _Tokens, msg: Any, pending: list[tuple[Any, str]]) -> Any:
    label = _F.LABEL_OPTIONAL
    if toks.peek() == "repeated":
        toks.take()
        label = _F.LABEL_REPEATED
    type_name = toks.take()
    field = msg.field.add(label=label)
    field.name = toks.take()
    toks.take("=")
    field.number = toks.number()
    toks.take(";")
    if type_name in SCALARS:
        field.type = SCALARS[type_name]
    else:
        pending.append((field, type_name))
    return field


def message_classes(path: Path) -> dict[str, Any]:
    """Every message class of the .proto file at ``path``, by name; built in a pool of its own,
    so the classes never clash with another copy of the same package."""
    fd = parse(path.read_text(encoding="utf-8"), str(path))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"{fd.package}.{m.name}" if fd.package else m.name)) for m in fd.message_type}


def enum_values(path: Path) -> dict[str, dict[str, int]]:
    """Every enum of the .proto file at ``path``: its value names and numbers."""
    fd = parse(path.read_text(encoding="utf-8"), str(path))
    return {e.name: {v.name: v.number for v in e.value} for e in fd.enum_type}
