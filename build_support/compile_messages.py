"""Compile gettext catalogs (``.po``) into the ``.mo`` files Django reads, in pure Python.

The repository holds only the ``.po`` sources. ``setup.py`` compiles them into every wheel,
and the test suite and ``scripts/demo`` compile them in a source checkout, so neither a build
machine nor a contributor needs GNU gettext. The rules are GNU ``msgfmt``'s, as CPython's
``Tools/i18n/msgfmt.py`` follows them: fuzzy, untranslated and obsolete (``#~``) entries are
left out.

Usage: ``python -m build_support.compile_messages [FOLDER ...]``, by default the folders of
:data:`SOURCE_FOLDERS`.
"""

from __future__ import annotations

import ast
import os
import re
import struct
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The repository's root, and its folders with catalogs: the two apps and the example project.
ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("renewals", "notifications", "example_project")

#: Where catalogs are, below a folder (Django's layout).
CATALOG_GLOB = "**/locale/*/LC_MESSAGES/*.po"

MO_MAGIC = 0x950412DE
_POT_DATE = "POT-Creation-Date:"
_KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")$")


class CatalogError(ValueError):
    """A ``.po`` file that cannot be compiled; the message names the file and line."""


@dataclass
class Entry:
    """One message of a catalog: ``msgstr`` holds one text, or one per plural form."""

    msgid: str
    msgstr: list[str] = field(default_factory=list)
    context: str | None = None
    msgid_plural: str | None = None
    flags: frozenset[str] = frozenset()
    line: int = 0  # where the entry starts in its file

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(self.msgstr)

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.context is None

    @property
    def key(self) -> str:
        """The entry's key in a ``.mo`` file: context, ``\\x04``, msgid, ``\\0``, plural."""
        key = self.msgid if self.msgid_plural is None else f"{self.msgid}\0{self.msgid_plural}"
        return key if self.context is None else f"{self.context}\x04{key}"


class _Reader:
    """Reads a catalog's lines into entries; each keyword line opens the field it names,
    and the quoted lines after it continue that field."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[Entry] = []
        self.entry: Entry | None = None
        self.flags: set[str] = set()
        self.field: str | None = None  # "msgctxt", "msgid", "msgid_plural" or "msgstr"

    def error(self, number: int, problem: str) -> CatalogError:
        return CatalogError(f"{self.path}:{number}: {problem}")

    def read(self, text: str) -> list[Entry]:
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if line.startswith("#,"):
                self.flags.update(flag.strip() for flag in line[2:].split(","))
            elif not line or line.startswith("#"):
                continue  # comments, references, obsolete entries (#~)
            elif line.startswith('"'):
                self.continue_field(number, self.string(number, line))
            else:
                self.keyword(number, line)
        self.close()
        return self.entries

    def string(self, number: int, quoted: str) -> str:
        try:
            value = ast.literal_eval(quoted)
        except (SyntaxError, ValueError):
            raise self.error(number, f"not a quoted string: {quoted}") from None
        if not isinstance(value, str):
            raise self.error(number, f"not a quoted string: {quoted}")
        return value

    def keyword(self, number: int, line: str) -> None:
        match = _KEYWORD.match(line)
        if match is None:
            raise self.error(number, f"unexpected line: {line}")
        name, index, quoted = match.groups()
        value = self.string(number, quoted)
        opens_entry = name == "msgctxt" or (name == "msgid" and self.field != "msgctxt")
        if opens_entry:
            self.close()
            self.entry = Entry(msgid="", flags=frozenset(self.flags), line=number)
            self.flags = set()
        entry = self.entry
        if entry is None:
            raise self.error(number, f"{name} before msgid")
        if name == "msgctxt":
            entry.context = value
        elif name == "msgid":
            entry.msgid = value
        elif name == "msgid_plural":
            entry.msgid_plural = value
        else:
            expected = len(entry.msgstr)
            if (index is None) != (entry.msgid_plural is None) or int(index or 0) != expected:
                raise self.error(number, f"{name} does not follow its msgid's form")
            entry.msgstr.append(value)
        self.field = "msgstr" if name.startswith("msgstr") else name

    def continue_field(self, number: int, value: str) -> None:
        entry = self.entry
        if entry is None or self.field is None:
            raise self.error(number, "a string outside any entry")
        if self.field == "msgctxt":
            entry.context = (entry.context or "") + value
        elif self.field == "msgid":
            entry.msgid += value
        elif self.field == "msgid_plural":
            entry.msgid_plural = (entry.msgid_plural or "") + value
        else:
            entry.msgstr[-1] += value

    def close(self) -> None:
        if self.entry is not None:
            if not self.entry.msgstr:
                raise self.error(self.entry.line, "an entry without msgstr")
            self.entries.append(self.entry)
        self.entry, self.field = None, None


def read_po(path: Path) -> list[Entry]:
    """The entries of the catalog at ``path``, obsolete ones left out; the header entry
    (msgid ``""``) first, as catalogs have it. Raises :class:`CatalogError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: not UTF-8, the encoding Django's catalogs use") from None
    return _Reader(path).read(text)


def _runtime_text(entry: Entry) -> str:
    """What the ``.mo`` holds for ``entry``: its forms joined by ``\\0``; the header without
    its POT-Creation-Date, as GNU msgfmt leaves it out (only a change of text changes a .mo)."""
    text = "\0".join(entry.msgstr)
    if entry.is_header:
        text = "".join(
            line for line in text.splitlines(keepends=True) if not line.startswith(_POT_DATE)
        )
    return text


def mo_bytes(entries: Iterable[Entry]) -> bytes:
    """A ``.mo`` file of the translated, non-fuzzy ``entries``: keys sorted, no hash table."""
    messages = {
        entry.key.encode(): _runtime_text(entry).encode()
        for entry in entries
        if entry.translated and not entry.fuzzy
    }
    keys = sorted(messages)
    strings = [*keys, *(messages[key] for key in keys)]  # the originals, then the translations
    originals_at = 7 * 4  # after the header's seven numbers
    translations_at = originals_at + 8 * len(keys)
    data_at = translations_at + 8 * len(keys)
    table: list[int] = []  # (length, offset) of each string
    data = bytearray()
    for string in strings:
        table += [len(string), data_at + len(data)]
        data += string + b"\0"
    header = struct.pack("<7I", MO_MAGIC, 0, len(keys), originals_at, translations_at, 0, 0)
    return header + struct.pack(f"<{len(table)}I", *table) + bytes(data)


def compile_catalog(po: Path) -> bool:
    """Write the ``.mo`` beside the ``.po`` at ``po``; ``False`` if it was up to date.

    The file is replaced at once (written aside, then renamed), so a process reading the
    catalogs meanwhile never sees half of one.
    """
    data = mo_bytes(read_po(po))
    mo = po.with_suffix(".mo")
    if mo.is_file() and mo.read_bytes() == data:
        return False
    handle, temporary = tempfile.mkstemp(dir=po.parent, prefix=".", suffix=".mo")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, mo)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


def compile_catalogs(folder: Path) -> list[Path]:
    """Compile every catalog below ``folder``; the ``.po`` files whose ``.mo`` changed."""
    return [po for po in sorted(folder.glob(CATALOG_GLOB)) if compile_catalog(po)]


def compile_sources() -> list[Path]:
    """Compile the catalogs of the repository's :data:`SOURCE_FOLDERS`, in place."""
    return [po for name in SOURCE_FOLDERS for po in compile_catalogs(ROOT / name)]


def main(argv: Sequence[str]) -> int:
    try:
        if argv:
            changed = [po for folder in argv for po in compile_catalogs(Path(folder))]
        else:
            changed = compile_sources()
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 1
    for po in changed:
        print(f"compiled {po.with_suffix('.mo')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
