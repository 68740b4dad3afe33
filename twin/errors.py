"""Errors the twin reports to users as one clear line each (never a traceback)."""

from __future__ import annotations


class TwinError(Exception):
    """A problem the user can act on; ``str()`` is the one-line message shown."""


class InputError(TwinError):
    """Bad input file: carries one line per problem, each naming file, field and reason."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
