"""Where each key and array item of a TOML file is written: key path → line number.

``tomllib`` gives values but no positions, and a validation error names a path such as
``intents.3.examples`` that an owner editing the file cannot see. This scanner walks text that
``tomllib`` has already accepted (so it never has to report syntax errors itself) and records the
line on which each key, each ``[[table]]`` element and each array item starts.
"""

from __future__ import annotations

from collections.abc import Sequence

Path = tuple[str | int, ...]


class _Scanner:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.lines: dict[Path, int] = {}
        self.aot: dict[Path, int] = {}  # array-of-tables path → index of its last element

    # -- characters -----------------------------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def skip_blank(self, newlines: bool) -> None:
        """Spaces and tabs, comments, and (inside arrays) newlines."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t\r" or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.s.find("\n", self.i)
                self.advance((len(self.s) if end < 0 else end) - self.i)
            else:
                return

    # -- keys and tables ------------------------------------------------------------------------
    def key(self) -> list[str]:
        """A dotted key (bare or quoted parts), up to but not including '=' or ']'."""
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            c = self.peek()
            if c in "\"'":
                parts.append(self.string())
            else:
                start = self.i
                while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] in "_-"):
                    self.advance()
                parts.append(self.s[start : self.i])
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    def resolve(self, parts: Sequence[str]) -> Path:
        """A header's path with the current index of every array of tables along it."""
        path: Path = ()
        for part in parts:
            path = (*path, part)
            if path in self.aot:
                path = (*path, self.aot[path])
        return path

    def document(self) -> dict[Path, int]:
        table: Path = ()
        while self.i < len(self.s):
            self.skip_blank(newlines=True)
            if self.i >= len(self.s):
                break
            line = self.line
            if self.peek(2) == "[[":
                self.advance(2)
                parts = self.key()
                self.advance(2)  # "]]"
                prefix = self.resolve(parts[:-1])
                base = (*prefix, parts[-1])
                self.aot[base] = self.aot.get(base, -1) + 1
                table = (*base, self.aot[base])
                self.lines.setdefault(base, line)
                self.lines[table] = line
            elif self.peek() == "[":
                self.advance()
                parts = self.key()
                self.advance()  # "]"
                table = self.resolve(parts)
                self.lines[table] = line
            else:
                self.pair(table)
        return self.lines

    def pair(self, table: Path) -> None:
        line = self.line
        path = (*table, *self.key())
        self.lines[path] = line
        self.advance()  # "="
        self.skip_blank(newlines=False)
        self.value(path)

    # -- values ---------------------------------------------------------------------------------
    def value(self, path: Path) -> None:
        c = self.peek()
        if c in "\"'":
            self.string()
        elif c == "[":
            self.array(path)
        elif c == "{":
            self.inline_table(path)
        else:  # numbers, booleans, dates: up to the next delimiter
            while self.i < len(self.s) and self.s[self.i] not in ",]}\n#":
                self.advance()

    def array(self, path: Path) -> None:
        self.advance()  # "["
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            self.lines[(*path, index)] = self.line
            self.value((*path, index))
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()
                index += 1

    def inline_table(self, path: Path) -> None:
        self.advance()  # "{"
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            if self.peek() == ",":
                self.advance()
                continue
            self.pair(path)

    def string(self) -> str:
        """A string's value (escapes are kept as written: only keys need the value, and a
        key with an escape in it is rare enough to be located by its prefix instead)."""
        quote = self.peek()
        if self.peek(3) == quote * 3:
            self.advance(3)
            end = self.s.find(quote * 3, self.i)
            while self.s[end + 3 : end + 4] == quote:  # up to two quotes may close the content
                end += 1
            value = self.s[self.i : end]
            self.advance(end + 3 - self.i)
            return value
        self.advance()
        start = self.i
        while self.s[self.i] != quote:
            self.advance(2 if quote == '"' and self.s[self.i] == "\\" else 1)
        value = self.s[start : self.i]
        self.advance()
        return value


def key_lines(text: str) -> dict[Path, int]:
    """Every key path of valid TOML ``text`` (array items and ``[[table]]`` elements by index)
    mapped to the line, counted from 1, on which it starts."""
    return _Scanner(text).document()


def line_of(lines: dict[Path, int], path: Sequence[str | int]) -> int | None:
    """The line of ``path``, or of its longest prefix written in the file (a default value has
    no line of its own: the table it belongs to is the place to add it); None for the top."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
