"""Bytes -> str for web payloads: declared charsets first, then a detector; binary payloads refused.

Order of evidence (the first that decodes the payload wins):
1. a byte-order mark (UTF-8/16/32): it overrides any declaration, as browsers do;
   then, for payloads with non-ASCII bytes that are valid UTF-8, UTF-8 (departure from browser
   rules: servers often declare a default ``ISO-8859-1`` for UTF-8 pages, while legacy CJK or
   single-byte text almost never forms valid UTF-8 by chance);
2. the ``charset`` parameter of the HTTP ``Content-Type`` header;
3. the HTML ``<meta charset>`` / ``<meta http-equiv="Content-Type">`` in the first 4 KiB;
4. ``charset-normalizer``'s detection;
5. UTF-8 with replacement characters, when the detector has no answer.

A declared charset "decodes" the payload when at most ``max_replacement_share`` of the
characters come out as U+FFFD (real pages declare UTF-8 and still carry a stray Latin-1 byte;
one bad byte should not hand the page to a detector that may guess a worse codec). Labels are
resolved the way browsers do (WHATWG): ``iso-8859-1``/``ascii`` mean ``cp1252``, ``gb2312``/``gbk``
mean ``gb18030``, ``shift_jis`` means ``cp932``, and so on.

Binary served as HTML (images, PDFs, archives, fonts...) is recognised by its magic number or by
a high share of control bytes and raises ``BinaryPayloadError``; a payload that no candidate
decodes with few enough replacements raises ``UndecodableError``. Both are rejects, not crashes.
"""
from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

META_SCAN_BYTES = 4096
DETECT_BYTES = 64 * 1024  # charset-normalizer samples; more bytes cost time and rarely change the answer
DEFAULT_MAX_REPLACEMENT_SHARE = 0.01
BINARY_SNIFF_BYTES = 8192
BINARY_CONTROL_SHARE = 0.10

# (magic prefix, kind). Checked after leading whitespace is stripped.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"PK\x03\x04", "zip"),
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
    (b"\x7fELF", "elf"),
    (b"MZ", "exe"),
    (b"wOFF", "woff"),
    (b"wOF2", "woff2"),
    (b"OggS", "ogg"),
    (b"ID3", "mp3"),
    (b"\x00\x00\x01\x00", "ico"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),
    (b"CWS", "swf"),
    (b"FWS", "swf"),
)
_RIFF = b"RIFF"  # WAV/AVI/WEBP

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# WHATWG Encoding Standard label overrides (what browsers actually use for these labels).
_WHATWG_OVERRIDES = {
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "chinese": "gb18030",
    "csgb2312": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "utf8": "utf-8",
    "unicode": "utf-16-le",
    "utf-16": "utf-16-le",
    "x-user-defined": "cp1252",
}

_CT_CHARSET = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.IGNORECASE)
_META_TAG = re.compile(rb"<meta\b[^>]*>", re.IGNORECASE)
_META_CHARSET_ATTR = re.compile(rb"""\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:\-]+)""", re.IGNORECASE)


class DecodeError(ValueError):
    """Base class of the reasons a payload cannot become text; ``reason`` is the reject reason."""

    reason = "undecodable"


class BinaryPayloadError(DecodeError):
    """The payload is binary (an image, archive, font...) although it was served as text."""

    reason = "binary_payload"


class UndecodableError(DecodeError):
    """No declared or detected charset decodes the payload with few enough replacement characters."""

    reason = "undecodable"


@dataclass(frozen=True)
class Decoded:
    """A decoded payload: the text, the Python codec used, and where the charset came from
    (``bom``, ``valid_utf8``, ``http``, ``meta``, ``detected`` or ``fallback``)."""

    text: str
    encoding: str
    source: str
    replacements: int = 0  # U+FFFD characters introduced by decoding


def normalize_charset(label: str | bytes | None) -> str | None:
    """The Python codec for a charset label, following browser (WHATWG) aliases; None if unknown."""
    if label is None:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    key = label.strip().strip("\"'").lower()
    if not key:
        return None
    key = _WHATWG_OVERRIDES.get(key, key)
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    # Codecs that are not text encodings (e.g. "base64", "rot13", "zip") must never be used here.
    try:
        codecs.lookup(name).incrementaldecoder  # noqa: B018 - presence check
        b"a".decode(name)
    except (LookupError, UnicodeError, TypeError, AttributeError):
        return None
    return _WHATWG_OVERRIDES.get(name, name)


def charset_from_content_type(content_type: str | None) -> str | None:
    """The charset label of an HTTP ``Content-Type`` value (``text/html; charset=utf-8`` -> ``utf-8``)."""
    if not content_type:
        return None
    match = _CT_CHARSET.search(content_type.encode("latin-1", "ignore"))
    return match.group(1).decode("ascii") if match else None


def charset_from_meta(payload: bytes, scan_bytes: int = META_SCAN_BYTES) -> str | None:
    """The charset declared by a ``<meta>`` tag in the first ``scan_bytes`` bytes, if any."""
    head = payload[:scan_bytes]
    for tag in _META_TAG.finditer(head):
        match = _META_CHARSET_ATTR.search(tag.group(0))
        if match:
            return match.group(1).decode("ascii", "ignore")
    return None


def charset_from_bom(payload: bytes) -> str | None:
    """The encoding named by a byte-order mark at the start of ``payload``, if any."""
    for bom, name in _BOMS:
        if payload.startswith(bom):
            return name
    return None


_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0C, 0x0D, 0x1B))


def binary_kind(payload: bytes, sniff_bytes: int = BINARY_SNIFF_BYTES,
                control_share: float = BINARY_CONTROL_SHARE) -> str | None:
    """What binary format ``payload`` is (``"png"``, ``"pdf"``, ... or ``"control_bytes"``), or None
    when it looks like text. Payloads with a UTF-16/32 byte-order mark are text."""
    if charset_from_bom(payload):
        return None
    head = payload[:sniff_bytes]
    stripped = head.lstrip()
    for magic, kind in _MAGIC:
        if stripped.startswith(magic):
            return kind
    if stripped.startswith(_RIFF) and stripped[8:12] in (b"WAVE", b"AVI ", b"WEBP"):
        return stripped[8:12].decode("ascii").strip().lower()
    if not head:
        return None
    # Control bytes other than TAB, LF, FF, CR and ESC (ISO-2022 uses ESC) are rare in any text encoding.
    controls = len(head) - len(head.translate(None, _CONTROL_BYTES))
    if controls / len(head) > control_share:
        return "control_bytes"
    return None


def _try_decode(payload: bytes, encoding: str, max_share: float) -> tuple[str, int] | None:
    try:
        return payload.decode(encoding), 0
    except UnicodeDecodeError:
        pass
    except LookupError:
        return None
    text = payload.decode(encoding, errors="replace")
    replacements = text.count("\ufffd") - _count_fffd_in_source(payload, encoding)
    if replacements <= max_share * max(1, len(text)):
        return text, replacements
    return None


def _count_fffd_in_source(payload: bytes, encoding: str) -> int:
    # A page may legitimately contain U+FFFD; only count the ones decoding introduced (utf-8 case).
    if encoding.replace("_", "-") in ("utf-8", "utf8"):
        return payload.count(b"\xef\xbf\xbd")
    return 0


def detect_charset(payload: bytes, detect_bytes: int = DETECT_BYTES) -> str | None:
    """``charset-normalizer``'s best guess for the first ``detect_bytes`` bytes, or None."""
    from charset_normalizer import from_bytes

    sample = payload[:detect_bytes]
    if len(payload) > detect_bytes:
        # Do not cut a multi-byte character in half at the end of the sample.
        sample = sample[: max(1, len(sample) - 4)]
    best = from_bytes(sample).best()
    return normalize_charset(best.encoding) if best is not None else None


def decode_payload(payload: bytes, content_type: str | None = None, *, is_html: bool = True,
                   max_replacement_share: float = DEFAULT_MAX_REPLACEMENT_SHARE) -> Decoded:
    """Decode a web payload to text (see the module docstring for the order of evidence).

    Raises ``BinaryPayloadError`` for binary content and ``UndecodableError`` when nothing decodes it.
    """
    if not payload:
        return Decoded("", "utf-8", "fallback")
    kind = binary_kind(payload)
    if kind is not None:
        raise BinaryPayloadError(f"payload looks like {kind} ({len(payload)} bytes)")

    candidates: list[tuple[str, str | None]] = []
    bom = charset_from_bom(payload)
    if bom:
        candidates.append(("bom", bom))
    candidates.append(("http", normalize_charset(charset_from_content_type(content_type))))
    if is_html:
        meta = normalize_charset(charset_from_meta(payload))
        if meta and meta.startswith(("utf-16", "utf-32")):
            meta = "utf-8"  # a meta tag readable as ASCII cannot be UTF-16/32 (WHATWG prescan rule)
        candidates.append(("meta", meta))

    if not bom and not payload.isascii():
        # Valid UTF-8 with non-ASCII bytes is UTF-8 whatever the page declares: legacy CJK and
        # single-byte text almost never forms valid UTF-8 by chance, while servers often send a
        # default "charset=ISO-8859-1" for UTF-8 pages.
        try:
            return Decoded(payload.decode("utf-8"), "utf-8", "valid_utf8")
        except UnicodeDecodeError:
            pass

    tried: set[str] = set()
    for source, encoding in candidates:
        if not encoding or encoding in tried:
            continue
        tried.add(encoding)
        body = payload[len(_bom_bytes(payload)):] if source == "bom" else payload
        decoded = _try_decode(body, encoding, max_replacement_share)
        if decoded is not None:
            return Decoded(decoded[0], encoding, source, decoded[1])

    # Plain UTF-8 is by far the most common undeclared encoding and is cheap to check exactly.
    if "utf-8" not in tried:
        try:
            return Decoded(payload.decode("utf-8"), "utf-8", "detected")
        except UnicodeDecodeError:
            tried.add("utf-8")

    detected = detect_charset(payload)
    if detected and detected not in tried:
        decoded = _try_decode(payload, detected, max_replacement_share)
        if decoded is not None:
            return Decoded(decoded[0], detected, "detected", decoded[1])

    text = payload.decode("utf-8", errors="replace")
    replacements = text.count("\ufffd") - payload.count(b"\xef\xbf\xbd")
    if replacements <= max_replacement_share * max(1, len(text)):
        return Decoded(text, "utf-8", "fallback", replacements)
    raise UndecodableError(
        f"no charset decodes the payload (tried {sorted(tried | ({detected} if detected else set()))}; "
        f"utf-8 leaves {replacements} replacement characters in {len(text)})"
    )


def _bom_bytes(payload: bytes) -> bytes:
    for bom, _ in _BOMS:
        if payload.startswith(bom):
            return bom
    return b""
