"""Chinese first: every text the code and the templates show has its Simplified Chinese translation, so a page
never shows a stray English sentence to a user of the default language."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent


def texts_in_the_code() -> dict[str, str]:
    """Each msgid the code and the templates use, with one place it is used (as `make messages` extracts them)."""
    with open(ROOT / "babel.cfg") as config:
        method_map, options_map = parse_mapping_cfg(config)
    found: dict[str, str] = {}
    for filename, line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2)}
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            found.setdefault(msgid, f"{filename}:{line}")
    return found


def test_every_text_in_the_code_has_a_chinese_translation() -> None:
    with open(ROOT / "app" / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po", "rb") as file:
        catalog = read_po(file, locale="zh_CN")
    translated = {
        (message.id if isinstance(message.id, str) else message.id[0])
        for message in catalog
        if message.id
        and not message.fuzzy
        and all(message.string if isinstance(message.string, tuple) else [message.string])
    }
    missing = {msgid: where for msgid, where in texts_in_the_code().items() if msgid not in translated}
    assert not missing, f"untranslated (run `make messages` and translate app/locale/zh_CN): {missing}"
