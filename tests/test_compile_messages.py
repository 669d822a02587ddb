# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
"""The pure-Python catalog compiler the build and the test suite use instead of GNU msgfmt."""

from __future__ import annotations

import gettext
import io
import shutil
import subprocess
from pathlib import Path
from unittest.mock import ANY

import pytest

from build_support.compile_messages import (
    ROOT,
    SOURCE_FOLDERS,
    CatalogError,
    compile_catalog,
    compile_catalogs,
    main,
    mo_bytes,
    read_po,
)

CATALOG = r"""# A comment.
msgid ""
msgstr ""
"POT-Creation-Date: 2027-03-01 10:00+0000\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

#: views.py:1
msgid "Turn off auto-renewal"
msgstr "关闭自动续费"

#, python-format
msgid ""
"A long message "
"in two lines with a \"quote\"\n"
msgstr "一条长消息，带“引号”\n"

msgctxt "subscription status"
msgid "active"
msgstr "生效中"

#, python-format
msgid "%(count)d day"
msgid_plural "%(count)d days"
msgstr[0] "%(count)d Tag"
msgstr[1] "%(count)d Tage"

#, fuzzy
msgid "A guess"
msgstr "猜测"

msgid "Not yet translated"
msgstr ""

#~ msgid "Gone from the source"
#~ msgstr "已删除"
"""


def translations(data: bytes) -> gettext.GNUTranslations:
    return gettext.GNUTranslations(io.BytesIO(data))


@pytest.fixture
def po(tmp_path: Path) -> Path:
    path = tmp_path / "locale" / "xx" / "LC_MESSAGES" / "django.po"
    path.parent.mkdir(parents=True)
    path.write_text(CATALOG, encoding="utf-8")
    return path


def test_the_entries_read_as_gettext_writes_them(po: Path) -> None:
    header, *entries = read_po(po)

    assert header.is_header
    assert [(entry.context, entry.msgid, entry.msgstr) for entry in entries] == [
        (None, "Turn off auto-renewal", ["关闭自动续费"]),
        (None, 'A long message in two lines with a "quote"\n', ["一条长消息，带“引号”\n"]),
        ("subscription status", "active", ["生效中"]),
        (None, "%(count)d day", ["%(count)d Tag", "%(count)d Tage"]),
        (None, "A guess", ["猜测"]),
        (None, "Not yet translated", [""]),
    ]
    assert entries[3].msgid_plural == "%(count)d days"
    assert entries[1].flags == {"python-format"}
    assert entries[4].fuzzy
    assert not entries[5].translated


def test_the_mo_file_holds_what_gettext_reads(po: Path) -> None:
    catalog = translations(mo_bytes(read_po(po)))

    assert catalog.gettext("Turn off auto-renewal") == "关闭自动续费"
    assert (
        catalog.gettext('A long message in two lines with a "quote"\n') == "一条长消息，带“引号”\n"
    )
    assert catalog.pgettext("subscription status", "active") == "生效中"
    assert catalog.gettext("active") == "active"
    assert catalog.ngettext("%(count)d day", "%(count)d days", 1) == "%(count)d Tag"
    assert catalog.ngettext("%(count)d day", "%(count)d days", 5) == "%(count)d Tage"
    # As GNU msgfmt writes it: without the date of extraction, which changes nothing at runtime.
    assert catalog.info() == {"content-type": "text/plain; charset=UTF-8", "plural-forms": ANY}


def test_fuzzy_untranslated_and_obsolete_entries_are_left_out(po: Path) -> None:
    catalog = translations(mo_bytes(read_po(po)))

    assert catalog.gettext("A guess") == "A guess"
    assert catalog.gettext("Not yet translated") == "Not yet translated"
    assert catalog.gettext("Gone from the source") == "Gone from the source"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt not installed")
@pytest.mark.parametrize("folder", SOURCE_FOLDERS)
def test_the_project_catalogs_compile_as_gnu_msgfmt_compiles_them(
    folder: str, tmp_path: Path
) -> None:
    po = ROOT / folder / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    gnu = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(gnu), str(po)], check=True)

    ours = translations(mo_bytes(read_po(po)))

    # The parsed messages: a private attribute, which typeshed does not declare.
    gnu_catalog = translations(gnu.read_bytes())._catalog  # type: ignore[attr-defined]
    assert ours._catalog == gnu_catalog  # type: ignore[attr-defined]


def test_a_catalog_is_written_beside_its_source_and_only_when_it_changed(po: Path) -> None:
    assert compile_catalog(po) is True
    mo = po.with_suffix(".mo")
    assert translations(mo.read_bytes()).gettext("Turn off auto-renewal") == "关闭自动续费"

    assert compile_catalog(po) is False
    po.write_text(CATALOG.replace("关闭自动续费", "停止自动续费"), encoding="utf-8")
    assert compile_catalog(po) is True
    assert translations(mo.read_bytes()).gettext("Turn off auto-renewal") == "停止自动续费"


def test_every_catalog_below_a_folder_is_compiled(po: Path, tmp_path: Path) -> None:
    other = tmp_path / "app" / "locale" / "yy" / "LC_MESSAGES" / "djangojs.po"
    other.parent.mkdir(parents=True)
    shutil.copy(po, other)

    assert compile_catalogs(tmp_path) == sorted([po, other])
    assert compile_catalogs(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('msgid "a"\n', "without msgstr"),
        ('msgstr "a"\n', "msgstr before msgid"),
        ('msgid "a"\nmsgstr "b\\"\n', "not a quoted string"),
        ('msgid "a"\nmsgid_plural "as"\nmsgstr "b"\n', "does not follow"),
        ('msgid "a"\nmsgstr[0] "b"\n', "does not follow"),
        ('"a"\n', "outside any entry"),
        ('msgid "a"\nmsgstr "b"\nmsgfoo "c"\n', "unexpected line"),
    ],
)
def test_a_malformed_catalog_names_the_file_and_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    po = tmp_path / "django.po"
    po.write_text(text, encoding="utf-8")

    with pytest.raises(CatalogError, match=problem) as info:
        compile_catalog(po)

    assert str(info.value).startswith(f"{po}:")
    assert not po.with_suffix(".mo").exists()


def test_a_catalog_not_in_utf8_is_refused(tmp_path: Path) -> None:
    po = tmp_path / "django.po"
    po.write_bytes('msgid "a"\nmsgstr "é"\n'.encode("latin-1"))

    with pytest.raises(CatalogError, match="not UTF-8"):
        read_po(po)


def test_the_command_compiles_the_folders_it_is_given(
    po: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"compiled {po.with_suffix('.mo')}\n"

    po.write_text('msgid "a"\n', encoding="utf-8")
    assert main([str(tmp_path)]) == 1
    assert "without msgstr" in capsys.readouterr().err
