"""Slack Block Kit messages drawn in the terminal, roughly as Slack shows them.

``render_blocks(blocks)`` takes the ``blocks`` of a ``chat.postMessage`` / ``chat.update`` payload
(what :mod:`chalicelib.adapters.slack_messages` builds and the local Slack sink records) and returns a rich
renderable: headers in bold, section texts and fields (two columns) with Slack's mrkdwn (``*bold*``,
``_italic_``, ``~strike~``, `` `code` ``, ``<url|text>`` links, ``<@U123>`` mentions, ``:emoji:``),
context lines dimmed, buttons as ``[ Approve ]`` labels, dividers as rules. It never raises on
what it does not know: an unknown block or element type is shown as its type, dimmed.
"""

from __future__ import annotations

import html
import re
from typing import Any

from rich.console import Group, RenderableType
from rich.emoji import Emoji
from rich.panel import Panel
from rich.rule import Rule
from rich.style import Style
from rich.table import Table
from rich.text import Text

BUTTON_STYLES = {"primary": "bold white on green", "danger": "bold white on red"}
DEFAULT_BUTTON_STYLE = "bold reverse"
CODE_STYLE = "bold cyan"

# One mrkdwn token: an angle-bracket reference, inline code, or a bold/italic/strike span. Italic
# needs a word boundary on both sides, so the underscores of idcheck_broken stay as they are.
_TOKEN = re.compile(
    r"<(?P<ref>[^<>\n]+)>"
    r"|`(?P<code>[^`\n]+)`"
    r"|\*(?P<bold>[^*\n]+)\*"
    r"|(?<![A-Za-z0-9_])_(?P<italic>[^_\n]+)_(?![A-Za-z0-9_])"
    r"|~(?P<strike>[^~\n]+)~"
)
_SPECIAL = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def _plain(text: str, style: str | Style = "") -> Text:
    """Slack's escapes undone and ``:emoji:`` codes drawn."""
    return Text(Emoji.replace(html.unescape(text)), style=style)


def _reference(ref: str) -> Text:
    """``<url|text>``, ``<url>``, ``<@U123>``, ``<#C123|name>``, ``<!here>``, ``<!date^…|fallback>``."""
    target, _, label = ref.partition("|")
    if target.startswith("@"):
        return _plain(f"@{label or target[1:]}", "bold")
    if target.startswith("#"):
        return _plain(f"#{label or target[1:]}", "bold")
    if target.startswith("!"):
        special = target[1:].split("^", 1)[0]
        return _plain(label or _SPECIAL.get(special, f"@{special}"), "bold")
    url = html.unescape(target)
    return _plain(label or target, Style(underline=True, color="blue", link=url))


def mrkdwn(text: str) -> Text:
    """Slack's mrkdwn as rich Text; anything it does not recognise stays as written."""
    result = Text()
    position = 0
    for match in _TOKEN.finditer(text):
        result.append_text(_plain(text[position : match.start()]))
        if match["ref"] is not None:
            result.append_text(_reference(match["ref"]))
        elif match["code"] is not None:
            result.append(html.unescape(match["code"]), style=CODE_STYLE)  # no emoji inside code
        elif match["bold"] is not None:
            result.append_text(_plain(match["bold"], "bold"))
        elif match["italic"] is not None:
            result.append_text(_plain(match["italic"], "italic"))
        else:
            result.append_text(_plain(match["strike"], "strike"))
        position = match.end()
    result.append_text(_plain(text[position:]))
    return result


def _unknown(kind: Any) -> Text:
    return Text(f"[{kind if isinstance(kind, str) and kind else 'unknown'}]", style="dim")


def text_object(value: Any) -> Text:
    """A Block Kit text object (``{"type": "mrkdwn"|"plain_text", "text": ...}``) or a bare string."""
    if isinstance(value, str):
        return mrkdwn(value)
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        return _unknown(value.get("type") if isinstance(value, dict) else None)
    if value.get("type") == "plain_text":
        return _plain(value["text"]) if value.get("emoji", True) else Text(value["text"])
    return mrkdwn(value["text"])


def button(element: dict[str, Any]) -> Text:
    """``[ Approve ]``, green for ``primary``, red for ``danger``."""
    label = text_object(element.get("text", "")).plain or "button"
    style = BUTTON_STYLES.get(str(element.get("style")), DEFAULT_BUTTON_STYLE)
    url = element.get("url")
    return Text(f"[ {label} ]", style=Style.parse(style) + Style(link=url) if isinstance(url, str) else style)


def _element(element: Any) -> Text:
    """An element of an actions or context block, or a section's accessory."""
    if not isinstance(element, dict):
        return _unknown(None)
    kind = element.get("type")
    if kind == "button":
        return button(element)
    if kind in ("mrkdwn", "plain_text"):
        return text_object(element)
    if kind == "image":
        return Text(f"[image: {element.get('alt_text') or element.get('image_url') or ''}]", style="dim")
    return _unknown(kind)


def _row(elements: list[Text], separator: str = "  ") -> Text:
    return Text(separator).join(elements)


def _fields(fields: list[Any]) -> Table:
    grid = Table.grid(padding=(0, 3), expand=True)
    grid.add_column(ratio=1, overflow="fold")
    grid.add_column(ratio=1, overflow="fold")
    cells = [text_object(field) for field in fields]
    for index in range(0, len(cells), 2):
        grid.add_row(*cells[index : index + 2])
    return grid


def _section(block: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = []
    if "text" in block:
        parts.append(text_object(block["text"]))
    fields = block.get("fields")
    if isinstance(fields, list) and fields:
        parts.append(_fields(fields))
    if isinstance(block.get("accessory"), dict):
        parts.append(_element(block["accessory"]))
    return Group(*parts) if parts else _unknown("section")


def render_block(block: Any) -> RenderableType:
    """One block; an unknown type (or a malformed block) shows as its type, dimmed."""
    if not isinstance(block, dict):
        return _unknown(None)
    kind = block.get("type")
    found = block.get("elements")
    elements: list[Any] = found if isinstance(found, list) else []
    if kind == "header":
        title = text_object(block.get("text", ""))
        title.stylize("bold")
        return title
    if kind == "section":
        return _section(block)
    if kind == "context":
        line = _row([_element(e) for e in elements])
        line.stylize("dim")
        return line
    if kind == "actions":
        return _row([_element(e) for e in elements], "   ")
    if kind == "divider":
        return Rule(style="dim")
    if kind == "image":
        return _element(block)
    return _unknown(kind)


def render_blocks(blocks: Any) -> RenderableType:
    """A message's blocks, one under the other with a blank line between (Slack's spacing);
    anything but a list of blocks renders as a dimmed note rather than failing."""
    if not isinstance(blocks, list) or not blocks:
        return Text("(no blocks)", style="dim")
    parts: list[RenderableType] = []
    for index, block in enumerate(blocks):
        if index:
            parts.append(Text(""))
        parts.append(render_block(block))
    return Group(*parts)


def message_panel(payload: dict[str, Any], title: str, width: int | None = None) -> Panel:
    """A recorded message in a frame: its blocks, or its fallback ``text`` if it has none."""
    blocks = payload.get("blocks")
    body = render_blocks(blocks) if blocks else mrkdwn(str(payload.get("text", "")))
    return Panel(body, title=title, title_align="left", border_style="magenta", width=width, padding=(0, 1))
