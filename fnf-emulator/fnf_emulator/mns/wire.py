"""MNS wire format: parsing request XML and rendering response XML.

Requests are read with :mod:`xml.etree.ElementTree` (namespace optional); responses are written
as strings, every text escaped, in the shapes the ``aliyun-mns-sdk`` decoders require (every
element it reads present and non-empty).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape

from fnf_emulator.core import ServiceError

XMLNS = "http://mns.aliyuncs.com/doc/v1/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
CONTENT_TYPE = "text/xml;charset=utf-8"

_XML_INVALID_CHARS = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {"\r": "&#13;"}


def text(value: object) -> str:
    """Escape a value for an XML text node (carriage returns kept as character references)."""
    return escape(str(value), _ESCAPES)


def has_invalid_xml_chars(value: str) -> bool:
    return _XML_INVALID_CHARS.search(value) is not None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse(body: bytes, root: str | tuple[str, ...]) -> ElementTree.Element:
    """Parse a request body whose root element must be ``root`` (one of, when a tuple)."""
    try:
        element = ElementTree.fromstring(body)
    except ElementTree.ParseError as exc:
        raise ServiceError(400, "MalformedXML", f"The XML you provided was not well-formed: {exc}.") from exc
    roots = (root,) if isinstance(root, str) else root
    if _local(element.tag) not in roots:
        raise ServiceError(
            400,
            "InvalidArgument",
            "The XML you provided did not validate against our published schema, "
            f"cause by Element {_local(element.tag)}: expected {' or '.join(roots)}.",
        )
    return element


def fields(
    element: ElementTree.Element, allowed: Iterable[str], ignored: Iterable[str] = ()
) -> dict[str, str]:
    """The text of each child element, by local name; unknown children are an InvalidArgument."""
    allowed_set = set(allowed)
    ignored_set = set(ignored)
    values: dict[str, str] = {}
    for child in element:
        name = _local(child.tag)
        if name in ignored_set:
            continue
        if name not in allowed_set:
            raise ServiceError(
                400,
                "InvalidArgument",
                "The XML you provided did not validate against our published schema, "
                f"cause by Element {name} in {_local(element.tag)}.",
            )
        if len(child):
            raise ServiceError(400, "InvalidArgument", f"Element {name} must hold text, not elements.")
        values[name] = child.text or ""
    return values


def children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    """Every child element; each must be called ``name``."""
    found = []
    for child in element:
        if _local(child.tag) != name:
            raise ServiceError(
                400,
                "InvalidArgument",
                "The XML you provided did not validate against our published schema, "
                f"cause by Element {_local(child.tag)} in {_local(element.tag)}: expected {name}.",
            )
        found.append(child)
    return found


def element(tag: str, values: Mapping[str, object]) -> str:
    """``<tag><k>v</k>...</tag>`` without the namespace (for nested elements)."""
    inner = "".join(f"<{k}>{text(v)}</{k}>" for k, v in values.items())
    return f"<{tag}>{inner}</{tag}>"


def document(tag: str, inner: str) -> bytes:
    """A whole response document whose root carries the MNS namespace."""
    return f'{XML_DECLARATION}<{tag} xmlns="{XMLNS}">{inner}</{tag}>'.encode()


def values_document(tag: str, values: Mapping[str, object]) -> bytes:
    """A whole response document ``<tag xmlns=...><k>v</k>...</tag>``."""
    return document(tag, "".join(f"<{k}>{text(v)}</{k}>" for k, v in values.items()))


def error_document(code: str, message: str, request_id: str, host_id: str) -> bytes:
    return values_document(
        "Error", {"Code": code, "Message": message, "RequestId": request_id, "HostId": host_id}
    )
