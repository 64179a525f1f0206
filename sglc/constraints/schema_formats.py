"""Regexes for JSON Schema `format`s (`FORMAT_REGEXES`: the text between a JSON string's
quotes). Each accepts only valid values (a subset of them where the full grammar is large):

    date        RFC 3339 full-date, calendar-checked: days per month, Feb 29 in leap years only,
                years 0001-9999
    time        RFC 3339 full-time (the offset is required); seconds 00-59 (no leap seconds,
                which are valid only at 23:59 UTC), upper-case Z
    date-time   date "T" time
    email       dot-atom local part @ a dotted host name (no quoted local parts, no IP hosts)
    uuid        8-4-4-4-12 hex digits
    ipv4        dotted quad, no leading zeros
    ipv6        eight groups, or :: compressing some (no embedded IPv4, no zone)
    uri         scheme "://" host [":" port] path [? query] [# fragment]; percent-encoded
                octets and RFC 3986's unreserved and sub-delimiter characters only
"""

from __future__ import annotations

_D = "[0-9]"
# years 0001-9999 (Python's date and many validators have no year 0)
_YEAR = "(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
# years divisible by 4 but not by 100, or by 400 (Gregorian leap years)
_LEAP_YEAR = (f"(?:{_D}{{2}}(?:0[48]|[2468][048]|[13579][26])"
              "|(?:0[48]|[2468][048]|[13579][26])00)")
_DATE = (f"(?:{_YEAR}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
         "|(?:0[13-9]|1[0-2])-(?:29|30)"
         "|(?:0[13578]|1[02])-31)"
         f"|{_LEAP_YEAR}-02-29)")
_TIME = ("(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?"
         "(?:Z|[+\\-](?:[01][0-9]|2[0-3]):[0-5][0-9])")
_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\-]+"
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9\\-]{0,61}[A-Za-z0-9])?"
_HOST = f"{_LABEL}(?:\\.{_LABEL})*"
_EMAIL = f"{_ATOM}(?:\\.{_ATOM})*@{_LABEL}(?:\\.{_LABEL})+"
_HEX = "[0-9a-fA-F]"
_UUID = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = f"{_OCTET}(?:\\.{_OCTET}){{3}}"
_H16 = f"{_HEX}{{1,4}}"


def _groups(count: int) -> str:
    """`count` colon-separated 16-bit groups."""
    return "" if count == 0 else _H16 + (f"(?::{_H16}){{{count - 1}}}" if count > 1 else "")


def _ipv6() -> str:
    # with ::, `head` groups before and at most 7 - head after it
    compressed = [f"{_groups(head)}::(?:{_H16}(?::{_H16}){{0,{6 - head}}})?" if head < 7
                  else f"{_groups(head)}::" for head in range(8)]
    return "(?:" + "|".join([_groups(8), *compressed]) + ")"


_PCT = f"%{_HEX}{{2}}"
_PCHAR = f"(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|{_PCT})"
_URI = (f"[A-Za-z][A-Za-z0-9+\\-.]*://{_HOST}(?::[0-9]{{1,5}})?(?:/{_PCHAR}*)*"
        f"(?:\\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?")

FORMAT_REGEXES: dict[str, str] = {
    "date": _DATE,
    "time": _TIME,
    "date-time": f"{_DATE}T{_TIME}",
    "email": _EMAIL,
    "uuid": _UUID,
    "ipv4": _IPV4,
    "ipv6": _ipv6(),
    "uri": _URI,
}
"""format name -> the regex of its values (no quotes; every character needs no JSON escape)."""

__all__ = ["FORMAT_REGEXES"]
