"""Charset decoding of web payloads: the order of evidence, browser aliases, binary payloads."""
from __future__ import annotations

import codecs

import pytest

from pipeline.extract.decode import (
    BinaryPayloadError,
    binary_kind,
    charset_from_content_type,
    charset_from_meta,
    decode_payload,
    normalize_charset,
)

CHINESE = "<html><head><title>数学</title></head><body><p>二次方程的求根公式是数学中最常用的公式之一。</p></body></html>"


def test_http_header_charset_wins_over_detection():
    decoded = decode_payload(CHINESE.encode("gbk"), "text/html; charset=GBK")
    assert decoded.text == CHINESE and decoded.encoding == "gb18030" and decoded.source == "http"


def test_meta_charset_used_when_the_header_has_none():
    page = "<html><head><meta http-equiv='Content-Type' content='text/html; charset=Shift_JIS'></head>" \
           "<body>数学の問題を解きましょう。</body></html>"
    decoded = decode_payload(page.encode("shift_jis"), "text/html")
    assert decoded.text == page and decoded.source == "meta" and decoded.encoding == "cp932"


def test_detector_when_nothing_is_declared():
    page = "<html><body>" + "Это страница о математике и уравнениях второй степени. " * 5 + "</body></html>"
    decoded = decode_payload(page.encode("cp1251"), None)
    assert decoded.text == page and decoded.source == "detected"


def test_valid_utf8_beats_a_wrong_latin1_header():
    decoded = decode_payload(CHINESE.encode("utf-8"), "text/html; charset=ISO-8859-1")
    assert decoded.text == CHINESE and decoded.source == "valid_utf8"


def test_bom_beats_the_header():
    payload = codecs.BOM_UTF16_LE + CHINESE.encode("utf-16-le")
    decoded = decode_payload(payload, "text/html; charset=utf-8")
    assert decoded.text == CHINESE and decoded.source == "bom"


def test_one_stray_byte_keeps_the_declared_charset():
    page = ("<html><body>" + "café au lait " * 200 + "</body></html>").encode("utf-8") + b"\xff"
    decoded = decode_payload(page, "text/html; charset=utf-8")
    assert decoded.encoding == "utf-8" and decoded.replacements == 1 and "café" in decoded.text


@pytest.mark.parametrize("label,codec", [
    ("ISO-8859-1", "cp1252"), ("us-ascii", "cp1252"), ("GB2312", "gb18030"), ("gbk", "gb18030"),
    ("Shift_JIS", "cp932"), ("EUC-KR", "cp949"), ("UTF8", "utf-8"), ("'utf-8'", "utf-8"),
    ("base64", None), ("rot13", None), ("no-such-charset", None), ("", None), (None, None),
])
def test_normalize_charset(label, codec):
    assert normalize_charset(label) == codec


def test_header_and_meta_parsing():
    assert charset_from_content_type('text/html; charset="windows-1251"') == "windows-1251"
    assert charset_from_content_type("text/html") is None
    assert charset_from_meta(b"<html><head><META CHARSET=euc-jp></head>") == "euc-jp"
    assert charset_from_meta(b"<meta name=viewport content='width=device-width'>") is None


@pytest.mark.parametrize("payload,kind", [
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "png"),
    (b"%PDF-1.7\n%\xe2\xe3", "pdf"),
    (b"\xff\xd8\xff\xe0" + bytes(64), "jpeg"),
    (b"PK\x03\x04" + bytes(64), "zip"),
    (bytes(range(32)) * 20, "control_bytes"),
    (b"<html><body>plain</body></html>", None),
    (codecs.BOM_UTF16_LE + "hi".encode("utf-16-le"), None),
])
def test_binary_kind(payload, kind):
    assert binary_kind(payload) == kind


def test_binary_served_as_html_is_refused():
    with pytest.raises(BinaryPayloadError) as err:
        decode_payload(b"GIF89a" + bytes(200), "text/html")
    assert err.value.reason == "binary_payload"
