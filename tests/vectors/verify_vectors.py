#!/usr/bin/env python3
"""Independent verifier of Docket log test vectors (format docket-log/1).

Written from docs/log-format.md alone, so that the specification, not the Rust code, is what it
checks against. It reads tests/vectors/log-v1.json (or the file given as the first argument),
then:

  1. checks that every listed key's public key and key id derive from its seed;
  2. verifies the intact log, comparing each event's recomputed hash input with the recorded
     `hash_input`, checking that each stored payload is in JCS form (so that the hash input is
     also the JCS encoding of the whole envelope), and expects no failure;
  3. verifies every tampered copy and expects its first failure at exactly the recorded
     position with exactly the recorded reason.

It prints one summary line and exits 0 when everything holds, 1 otherwise (2 on unusable input).

It also derives a few cases of its own from the vectors (section 19 of the specification:
event ids, public keys and acceptance signatures in other text forms, small-order keys, system
payloads that are not objects, a genesis payload with a member given twice), re-hashing and
re-signing the changed event with the vectors' own keys so that only the rule under test can
fail, and checks each for its expected outcome.

Beyond the members the file has today, it also honours two optional ones, at the top level or
in a tampered case: `trusted_genesis_key` (a key id to pin, as `docket verify --genesis-key`
does) and `head` (`{"position": N, "hash": "<hex>" | null}`, the recorded head). The events
listed are the verifier's input as they stand; choosing the events up to a recorded head, as
`docket verify` does when it reads a database (section 14.1), is the file's business.

Dependencies: Python 3.11 and the PyPI packages `blake3` and `cryptography`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# ---------------------------------------------------------------------------------------------
# Constants of the format (docs/log-format.md, sections 6 to 10)
# ---------------------------------------------------------------------------------------------

FORMAT = "docket-log/1"
EVENT_HASH_DOMAIN = b"docket/event/v1\n"
KEY_ID_DOMAIN = b"docket/key-id/v1\n"
EVENT_SIGNATURE_DOMAIN = b"docket/event-signature/v1\n"
KEY_ACCEPTANCE_DOMAIN = b"docket/key-acceptance/v1\n"
GENESIS_TYPE = "log.genesis"
KEY_ROTATED_TYPE = "keys.rotated"
SYSTEM_STREAM = "system"
MAX_JSON_NESTING = 127  # containers; 128 or more nested arrays/objects is malformed

GENESIS_FIELDS = ("format", "log_id", "key_id", "public_key")
ROTATION_FIELDS = ("previous_key_id", "next_key_id", "next_public_key", "acceptance_signature")


class Malformed(Exception):
    """Text that is not JSON as the format defines it."""


# ---------------------------------------------------------------------------------------------
# JSON parsing as the format defines it (section 6.3)
# ---------------------------------------------------------------------------------------------


def _finite_number(text: str) -> float:
    # Every JSON number becomes the IEEE 754 double nearest to its decimal value (Python's
    # float() rounds correctly). A number whose magnitude rounds to infinity is malformed.
    value = float(text)
    if not math.isfinite(value):
        raise Malformed("number out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise Malformed(f"{name} is not JSON")


class _Members(list):
    """An object's members in text order, repeated names included, until they are checked."""


def _unique_members(pairs: list[tuple[str, Any]]) -> _Members:
    # Genesis and rotation payloads (sections 10 and 11): a member name given more than once is
    # refused, not resolved to one of its values. Names are compared as decoded, after escapes.
    seen = set()
    for name, _ in pairs:
        if name in seen:
            raise Malformed(f"member {name!r} given more than once")
        seen.add(name)
    return _Members(pairs)


def _check_tree(value: Any, depth: int) -> None:
    # Every member is checked, also one whose name occurs again later and whose value is then
    # dropped: the text must be JSON as a whole (section 6.3, rule 1).
    if isinstance(value, str):
        _check_string(value)
    elif isinstance(value, _Members):
        if depth + 1 > MAX_JSON_NESTING:
            raise Malformed("nested too deeply")
        for key, item in value:
            _check_string(key)
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        if depth + 1 > MAX_JSON_NESTING:
            raise Malformed("nested too deeply")
        for item in value:
            _check_tree(item, depth + 1)


def _last_wins(value: Any) -> Any:
    # Section 6.3, rule 3: of members with the same name, the last one's value is kept.
    if isinstance(value, _Members):
        return {key: _last_wins(item) for key, item in value}
    if isinstance(value, list):
        return [_last_wins(item) for item in value]
    return value


def _check_string(text: str) -> None:
    # Python's decoder lets unpaired \uD800-\uDFFF escapes through; the format does not.
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise Malformed("unpaired surrogate")


def parse_json(text: str, *, unique_members: bool = False) -> Any:
    """Parses stored JSON text: strict RFC 8259, numbers as doubles, duplicate keys last-wins.

    With `unique_members`, as for genesis and rotation payloads, a repeated member name in any
    object is malformed instead.
    """
    try:
        value = json.loads(
            text,
            parse_float=_finite_number,
            parse_int=_finite_number,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_members if unique_members else _Members,
        )
    except Malformed:
        raise
    except (ValueError, RecursionError) as error:
        raise Malformed(str(error)) from None
    _check_tree(value, 0)
    return _last_wins(value)


# ---------------------------------------------------------------------------------------------
# RFC 8785 (JCS) encoding (section 6.2)
# ---------------------------------------------------------------------------------------------

_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


def jcs_string(text: str) -> str:
    out = ['"']
    for char in text:
        code = ord(char)
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif code < 0x20:
            out.append(_SHORT_ESCAPES.get(code, f"\\u{code:04x}"))
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def jcs_number(value: float) -> str:
    """ECMAScript Number.prototype.toString of a finite double (RFC 8785 section 3.2.2.3)."""
    value = float(value)
    if not math.isfinite(value):
        raise Malformed("non-finite number")
    if value == 0:
        return "0"  # also -0
    if value < 0:
        return "-" + jcs_number(-value)
    # repr() gives the shortest digit string that round-trips, nearest to the value.
    mantissa, _, exponent_text = repr(value).partition("e")
    exponent = int(exponent_text) if exponent_text else 0
    integer_part, _, fraction_part = mantissa.partition(".")
    digits = (integer_part + fraction_part).lstrip("0")
    point = exponent - len(fraction_part)  # value = int(digits) * 10**point
    stripped = digits.rstrip("0")
    point += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = k + point  # value = 0.digits * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    if k == 1:
        return f"{digits}e{sign}{abs(e)}"
    return f"{digits[0]}.{digits[1:]}e{sign}{abs(e)}"


def _utf16_key(text: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly as the sequences of UTF-16 code units do.
    return text.encode("utf-16-be", "surrogatepass")


def jcs(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return jcs_number(value)
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item) for item in value) + "]"
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda member: _utf16_key(member[0]))
        return "{" + ",".join(jcs_string(k) + ":" + jcs(v) for k, v in members) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


# ---------------------------------------------------------------------------------------------
# Ed25519: point decoding and strict verification (section 9)
# ---------------------------------------------------------------------------------------------

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def decode_point(encoded: bytes) -> tuple[int, int] | None:
    """Decodes a compressed Edwards point: bits 0-254 give y (taken mod p), bit 255 the sign of x.

    A y that is not the y-coordinate of a curve point fails. Non-canonical y (>= p) and a set
    sign bit on x = 0 are accepted, as the format prescribes (section 9.3).
    """
    if len(encoded) != 32:
        return None
    number = int.from_bytes(encoded, "little")
    sign = number >> 255
    y = (number & ((1 << 255) - 1)) % _P
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x = (u * pow(v, 3, _P) * pow(u * pow(v, 7, _P), (_P - 5) // 8, _P)) % _P
    check = (v * x * x) % _P
    if check == u:
        pass
    elif check == (-u) % _P:
        x = (x * _SQRT_M1) % _P
    else:
        return None
    if x & 1:
        x = _P - x  # the non-negative (even) root
    if sign:
        x = (-x) % _P
    return x, y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = (_D * x1 * x2 * y1 * y2) % _P
    x3 = ((x1 * y2 + y1 * x2) * pow(1 + t, _P - 2, _P)) % _P
    y3 = ((y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P)) % _P
    return x3, y3


# Every encoding of the eight points of small order that decodes (section 19.5): the canonical
# encodings of the points of order 1, 2, 4, 4, 8, 8, 8, 8, then the non-canonical ones (sign bit
# set on x = 0, or y + p in place of y).
SMALL_ORDER_ENCODINGS = (
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
)


def is_small_order(point: tuple[int, int]) -> bool:
    for _ in range(3):
        point = _add(point, point)
    return point == (0, 1)


def parse_public_key(text: Any) -> bytes | None:
    """64 lowercase hex digits of a point that is not of small order; None otherwise (section 8).

    A small-order key ([8]A is the identity: the eight points of order 1, 2, 4 or 8, under any
    of their encodings) is refused, like a text that is not lowercase hex or not a point.
    """
    raw = decode_lower_hex(text, 32)
    if raw is None:
        return None
    point = decode_point(raw)
    if point is None or is_small_order(point):
        return None
    return raw


def verify_strict(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 Ed25519 verification with the additional strict rules of section 9.3."""
    if len(signature) != 64:
        return False
    point_a = decode_point(public_key)
    point_r = decode_point(signature[:32])
    if point_a is None or point_r is None:
        return False
    if int.from_bytes(signature[32:], "little") >= _L:
        return False
    if is_small_order(point_a) or is_small_order(point_r):
        return False
    # The group equation [s]B = R + [k]A with k = SHA-512(R || A || M) mod L, and the
    # recomputed R compared byte for byte with the signature's R (so R must be canonical).
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Identifiers, keys, messages (sections 5, 8, 9, 11)
# ---------------------------------------------------------------------------------------------

_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_LOWER_HEX_RE = re.compile(r"[0-9a-f]*")


def decode_hex(text: Any, length: int) -> bytes | None:
    """Hex in either case, as the JSON form of an event may spell it (section 13.2)."""
    if not isinstance(text, str) or len(text) != 2 * length or not _HEX_RE.fullmatch(text):
        return None
    return bytes.fromhex(text)


def decode_lower_hex(text: Any, length: int) -> bytes | None:
    """Lowercase hex only, as in the genesis and rotation payloads (sections 8 and 11)."""
    if not isinstance(text, str) or len(text) != 2 * length or not _LOWER_HEX_RE.fullmatch(text):
        return None
    return bytes.fromhex(text)


def key_id_of(public_key: bytes) -> str:
    return blake3.blake3(KEY_ID_DOMAIN + public_key).digest()[:16].hex()


def event_signature_message(event_hash: bytes) -> bytes:
    return EVENT_SIGNATURE_DOMAIN + event_hash


def key_acceptance_message(previous_key_id: str, next_key_id: str) -> bytes:
    return KEY_ACCEPTANCE_DOMAIN + previous_key_id.encode() + b"\n" + next_key_id.encode()


_H = "[0-9a-f]"
_CANONICAL_UUID = re.compile(rf"{_H}{{8}}-{_H}{{4}}-{_H}{{4}}-{_H}{{4}}-{_H}{{12}}")


def is_uuid(text: str) -> bool:
    """The one UUID text form the format accepts for `id`: lowercase 8-4-4-4-12 (section 5.2).

    Any version and variant; every other spelling of a UUID (no hyphens, upper case, braces,
    a `urn:uuid:` prefix) is malformed.
    """
    return _CANONICAL_UUID.fullmatch(text) is not None


_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.[0-9]{6}Z"
)
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_canonical_timestamp(text: str) -> bool:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ`, a real Gregorian date, seconds up to 60 (section 5.3)."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(group) for group in match.groups())
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = 29 if month == 2 and leap else _DAYS[month - 1]
    return 1 <= day <= days and hour <= 23 and minute <= 59 and second <= 60


# ---------------------------------------------------------------------------------------------
# Events (sections 4 and 13.2)
# ---------------------------------------------------------------------------------------------


class InputError(Exception):
    """An event in the vectors file that no Docket store could hold."""


@dataclass
class Event:
    position: int
    id: str
    stream: str
    stream_version: int
    type: str
    schema_version: int
    payload: str
    actor: str
    request_id: str | None
    occurred_at: str
    recorded_at: str
    correlation_id: str | None
    causation_id: str | None
    idempotency_key: str | None
    prev_hash: bytes | None
    stream_prev_hash: bytes | None
    key_id: str
    hash: bytes
    signature: bytes
    hash_input: str | None = None

    @classmethod
    def from_json(cls, row: dict) -> "Event":
        def text(name: str) -> str:
            value = row.get(name)
            if not isinstance(value, str):
                raise InputError(f"{name} must be a string")
            return value

        def optional_text(name: str) -> str | None:
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{name} must be a string or null")
            return value

        def unsigned(name: str) -> int:
            value = row.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"{name} must be a non-negative integer")
            return value

        def digest(name: str, length: int, optional: bool) -> bytes | None:
            value = row.get(name)
            if value is None and optional:
                return None
            raw = decode_hex(value, length)
            if raw is None:
                raise InputError(f"{name} must be hex of {length} bytes")
            return raw

        return cls(
            position=unsigned("position"),
            id=text("id"),
            stream=text("stream"),
            stream_version=unsigned("stream_version"),
            type=text("type"),
            schema_version=unsigned("schema_version"),
            payload=text("payload"),
            actor=text("actor"),
            request_id=optional_text("request_id"),
            occurred_at=text("occurred_at"),
            recorded_at=text("recorded_at"),
            correlation_id=optional_text("correlation_id"),
            causation_id=optional_text("causation_id"),
            idempotency_key=optional_text("idempotency_key"),
            prev_hash=digest("prev_hash", 32, True),
            stream_prev_hash=digest("stream_prev_hash", 32, True),
            key_id=text("key_id"),
            hash=digest("hash", 32, False),
            signature=digest("signature", 64, False),
            hash_input=row.get("hash_input"),
        )


def _optional(text: str | None) -> str:
    return "null" if text is None else jcs_string(text)


def _link(digest: bytes | None) -> str:
    return "null" if digest is None else f'"{digest.hex()}"'


def hash_input(event: Event) -> bytes:
    """The exact bytes that are hashed (section 6): the stored payload goes in byte for byte."""
    parts = [
        '{"actor":', jcs_string(event.actor),
        ',"causation_id":', _optional(event.causation_id),
        ',"correlation_id":', _optional(event.correlation_id),
        ',"id":', jcs_string(event.id),
        ',"idempotency_key":', _optional(event.idempotency_key),
        ',"key_id":', jcs_string(event.key_id),
        ',"occurred_at":', jcs_string(event.occurred_at),
        ',"payload":', event.payload,
        ',"position":', str(event.position),
        ',"prev_hash":', _link(event.prev_hash),
        ',"recorded_at":', jcs_string(event.recorded_at),
        ',"request_id":', _optional(event.request_id),
        ',"schema_version":', str(event.schema_version),
        ',"stream":', jcs_string(event.stream),
        ',"stream_prev_hash":', _link(event.stream_prev_hash),
        ',"stream_version":', str(event.stream_version),
        ',"type":', jcs_string(event.type),
        "}",
    ]
    return EVENT_HASH_DOMAIN + "".join(parts).encode("utf-8", "surrogatepass")


def jcs_hash_input(event: Event) -> bytes:
    """The hash input computed the other way: JCS of the whole envelope, payload parsed.

    For every event Docket writes this equals hash_input() (section 6.2); the driver checks
    that it does for the intact vector log. Raises Malformed if the payload is not JSON.
    """
    envelope = {
        "actor": event.actor,
        "causation_id": event.causation_id,
        "correlation_id": event.correlation_id,
        "id": event.id,
        "idempotency_key": event.idempotency_key,
        "key_id": event.key_id,
        "occurred_at": event.occurred_at,
        "payload": parse_json(event.payload),
        "position": event.position,
        "prev_hash": event.prev_hash.hex() if event.prev_hash is not None else None,
        "recorded_at": event.recorded_at,
        "request_id": event.request_id,
        "schema_version": event.schema_version,
        "stream": event.stream,
        "stream_prev_hash": (
            event.stream_prev_hash.hex() if event.stream_prev_hash is not None else None
        ),
        "stream_version": event.stream_version,
        "type": event.type,
    }
    return EVENT_HASH_DOMAIN + jcs(envelope).encode("utf-8")


def is_canonical_payload(text: str) -> bool:
    """Whether a stored payload is the JCS encoding of its own value, as Docket writes it."""
    try:
        return jcs(parse_json(text)) == text
    except Malformed:
        return False


# ---------------------------------------------------------------------------------------------
# System payloads (sections 10 and 11)
# ---------------------------------------------------------------------------------------------


def parse_system_payload(text: str, fields: tuple[str, ...]) -> dict[str, str] | None:
    """A JSON object with exactly `fields`, each a string; None otherwise (sections 10, 11).

    Only an object will do: an array of the four strings, or any other JSON value, is refused.
    So is an object in which a member name occurs more than once, whatever its values (section
    6.3, rule 3 does not apply here).
    """
    try:
        value = parse_json(text, unique_members=True)
    except Malformed:
        return None
    if not isinstance(value, dict) or set(value) != set(fields):
        return None
    if not all(isinstance(value[name], str) for name in fields):
        return None
    return value


# ---------------------------------------------------------------------------------------------
# Verification (section 14)
# ---------------------------------------------------------------------------------------------


@dataclass
class Failure:
    position: int
    reason: str
    detail: str


@dataclass
class Summary:
    events: int
    head_hash: str | None
    log_id: str | None
    genesis_key_id: str | None
    current_key_id: str | None
    key_rotations: int
    streams: int


@dataclass
class Verifier:
    trusted_genesis_key: str | None = None
    next_position: int = 1
    last_hash: bytes | None = None
    streams: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    current_key: tuple[str, bytes] | None = None
    log_id: str | None = None
    genesis_key_id: str | None = None
    key_rotations: int = 0

    def check(self, event: Event) -> Failure | None:
        """Checks the next event; returns its failure, if any, leaving state undefined then."""

        def fail(reason: str, detail: str) -> Failure:
            return Failure(event.position, reason, detail)

        # Step 1: position. Reported at the position that is missing or repeated.
        if event.position != self.next_position:
            return Failure(
                self.next_position,
                "position_gap",
                f"expected position {self.next_position}, found {event.position}",
            )
        # Step 2: columns the writer guarantees.
        if not is_uuid(event.id):
            return fail("malformed_event", "event id is not a lowercase hyphenated UUID")
        if not is_canonical_timestamp(event.occurred_at) or not is_canonical_timestamp(
            event.recorded_at
        ):
            return fail("malformed_event", "timestamps are not in canonical form")
        # Step 3: the hash, over the stored payload bytes as they are.
        if blake3.blake3(hash_input(event)).digest() != event.hash:
            return fail("hash_mismatch", "recomputed hash differs")
        # Step 4: the global chain.
        if event.prev_hash != self.last_hash:
            return fail("chain_broken", "prev_hash is not the previous event's hash")
        # Steps 5 and 6: the stream's chain.
        tip = self.streams.get(event.stream)
        expected_version = 1 if tip is None else tip[0] + 1
        if event.stream_version != expected_version:
            return fail("stream_version_gap", f"expected stream version {expected_version}")
        if event.stream_prev_hash != (None if tip is None else tip[1]):
            return fail("stream_chain_broken", "stream_prev_hash is not the stream's last hash")
        # Step 7: the key in force (genesis, rotations).
        if event.position == 1:
            outcome = self._accept_genesis(event)
            if isinstance(outcome, Failure):
                return outcome
            signing_key = outcome
        else:
            if self.current_key is None:
                return fail("bad_genesis", "no key in force")
            current_id, current_public = self.current_key
            if event.key_id != current_id:
                return fail("unknown_signing_key", f"the key in force is {current_id}")
            signing_key = current_public
            if event.type == KEY_ROTATED_TYPE:
                rotation_failure = self._accept_rotation(event)
                if rotation_failure is not None:
                    return rotation_failure
        # Step 8: the event signature, by the key in force before this event.
        if not verify_strict(signing_key, event_signature_message(event.hash), event.signature):
            return fail("bad_signature", f"signature does not verify under key {event.key_id}")
        # Step 9: advance.
        self.streams[event.stream] = (event.stream_version, event.hash)
        self.last_hash = event.hash
        self.next_position += 1
        return None

    def _accept_genesis(self, event: Event) -> bytes | Failure:
        def bad(detail: str) -> Failure:
            return Failure(event.position, "bad_genesis", detail)

        if event.type != GENESIS_TYPE or event.stream != SYSTEM_STREAM or event.stream_version != 1:
            return bad("position 1 must be log.genesis, version 1 of the system stream")
        genesis = parse_system_payload(event.payload, GENESIS_FIELDS)
        if genesis is None:
            return bad("malformed genesis payload")
        public_key = parse_public_key(genesis["public_key"])
        if public_key is None:
            return bad("invalid public key")
        key_id = key_id_of(public_key)
        if genesis["format"] != FORMAT or genesis["key_id"] != key_id or event.key_id != key_id:
            return bad("genesis key id or format does not match its public key")
        if self.trusted_genesis_key is not None and self.trusted_genesis_key != key_id:
            return Failure(event.position, "untrusted_genesis_key", f"genesis key is {key_id}")
        self.log_id = genesis["log_id"]
        self.genesis_key_id = key_id
        self.current_key = (key_id, public_key)
        return public_key

    def _accept_rotation(self, event: Event) -> Failure | None:
        def bad(detail: str) -> Failure:
            return Failure(event.position, "bad_key_rotation", detail)

        if event.stream != SYSTEM_STREAM:
            return bad("key rotations belong to the system stream")
        rotation = parse_system_payload(event.payload, ROTATION_FIELDS)
        if rotation is None:
            return bad("malformed rotation payload")
        next_key = parse_public_key(rotation["next_public_key"])
        if next_key is None:
            return bad("invalid next key")
        next_id = key_id_of(next_key)
        if rotation["previous_key_id"] != event.key_id or rotation["next_key_id"] != next_id:
            return bad("rotation key ids do not match the keys")
        acceptance = decode_lower_hex(rotation["acceptance_signature"], 64)
        if acceptance is None:
            return bad("malformed acceptance signature")
        message = key_acceptance_message(rotation["previous_key_id"], next_id)
        if not verify_strict(next_key, message, acceptance):
            return bad("the incoming key did not sign its acceptance")
        self.current_key = (next_id, next_key)
        self.key_rotations += 1
        return None

    def finish(self, recorded_head: dict | None) -> Summary | Failure:
        if self.next_position == 1:
            return Failure(1, "empty_log", "the log has no genesis event")
        verified = self.next_position - 1
        if recorded_head is not None:
            head_hash = recorded_head.get("hash")
            head_bytes = None if head_hash is None else decode_hex(head_hash, 32)
            if recorded_head.get("position") != verified or head_bytes != self.last_hash:
                return Failure(recorded_head.get("position", 0), "head_mismatch", "head differs")
        return Summary(
            events=verified,
            head_hash=self.last_hash.hex() if self.last_hash is not None else None,
            log_id=self.log_id,
            genesis_key_id=self.genesis_key_id,
            current_key_id=self.current_key[0] if self.current_key else None,
            key_rotations=self.key_rotations,
            streams=len(self.streams),
        )


def verify_log(
    events: list[Event], trusted_genesis_key: str | None = None, recorded_head: dict | None = None
) -> Summary | Failure:
    verifier = Verifier(trusted_genesis_key=trusted_genesis_key)
    for event in events:
        failure = verifier.check(event)
        if failure is not None:
            return failure
    return verifier.finish(recorded_head)


# ---------------------------------------------------------------------------------------------
# Self-test of the encoder against RFC 8785's own examples
# ---------------------------------------------------------------------------------------------


def self_test() -> list[str]:
    problems = []
    numbers = {
        0.0: "0", -0.0: "0", 1.0: "1", -1.5: "-1.5", 1e21: "1e+21", 1e20: "100000000000000000000",
        1e-6: "0.000001", 1e-7: "1e-7", 5e-324: "5e-324", 123456789012345680000.0:
        "123456789012345680000", 1.7976931348623157e308: "1.7976931348623157e+308",
        9007199254740992.0: "9007199254740992", 333333333.3333333: "333333333.3333333",
        1e30: "1e+30", 4.5: "4.5", 0.002: "0.002", 1e-27: "1e-27", 0.1 + 0.2: "0.30000000000000004",
        -1e-7: "-1e-7", 1.5e300: "1.5e+300", 295147905179352830000.0: "295147905179352830000",
    }
    for value, expected in numbers.items():
        if jcs_number(value) != expected:
            problems.append(f"number {value!r} -> {jcs_number(value)} (want {expected})")
    rfc_strings = parse_json(r'"\u20ac$\u000F\u000aA\u0027\u0042\u0022\u005c\\\"\/"')
    if jcs(rfc_strings) != '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"':
        problems.append(f"string escaping: {jcs(rfc_strings)}")
    sorting = parse_json(
        r'{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh",'
        r'"1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control",'
        r'"\u00f6":"Latin Small Letter O With Diaeresis"}'
    )
    order = [key for key in json.loads(jcs(sorting))]
    if order != ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]:
        problems.append(f"key order: {order!r}")
    example = parse_json('{"b": 1.0, "a": [1e21, -0.0, "\\u20ac"]}')
    if jcs(example) != '{"a":[1e+21,0,"€"],"b":1}':
        problems.append(f"example: {jcs(example)}")
    for bad in ("NaN", "[Infinity]", "1e400", '"\\ud800"', "[" * 128 + "]" * 128, "{} x", ""):
        try:
            parse_json(bad)
            problems.append(f"accepted {bad[:20]!r}")
        except Malformed:
            pass
    parse_json("[" * 127 + "]" * 127)
    if parse_json('{"a":1,"b":2,"a":{"c":[3]}}') != {"a": {"c": [3.0]}, "b": 2.0}:
        problems.append("duplicate member names: the last value is kept")
    for bad in ('{"a":"\\ud800","a":"x"}', '{"a":' + "[" * 127 + "]" * 127 + ',"a":"x"}'):
        try:
            parse_json(bad)
            problems.append(f"accepted {bad[:20]!r} (a dropped duplicate must be JSON too)")
        except Malformed:
            pass
    members = '{"format":"f","log_id":"l","key_id":"k","public_key":"p"}'
    if parse_system_payload(members, GENESIS_FIELDS) is None:
        problems.append("a genesis payload with each member once is refused")
    for bad in ('{"format":"x",' + members[1:], '{"format":"f",' + members[1:],
                '{"\\u0066ormat":"x",' + members[1:], '["f","l","k","p"]',
                members[:-1] + ',"x":"y"}'):
        if parse_system_payload(bad, GENESIS_FIELDS) is not None:
            problems.append(f"accepted system payload {bad[:30]!r}")
    for good, canonical in (("2026-12-03T10:27:10.123456Z", True), ("2026-12-03T10:27:10Z", False),
                            ("2024-02-29T23:59:60.000000Z", True), ("2025-02-29T00:00:00.000000Z",
                            False), ("2026-12-03t10:27:10.123456Z", False)):
        if is_canonical_timestamp(good) != canonical:
            problems.append(f"timestamp {good}")
    for text, accepted in (("0190a3b4-7c1d-7000-8000-000000000002", True),
                           ("00000000-0000-0000-0000-000000000000", True),
                           ("0190A3B4-7C1D-7000-8000-000000000002", False),
                           ("0190a3b47c1d70008000000000000002", False),
                           ("{0190a3b4-7c1d-7000-8000-000000000002}", False),
                           ("urn:uuid:0190a3b4-7c1d-7000-8000-000000000002", False),
                           ("0190a3b4-7c1d-7000-8000-00000000000\u0662", False)):
        if is_uuid(text) != accepted:
            problems.append(f"event id {text}")
    for encoding in SMALL_ORDER_ENCODINGS:
        point = decode_point(bytes.fromhex(encoding))
        if point is None or not is_small_order(point) or parse_public_key(encoding) is not None:
            problems.append(f"small-order key {encoding} not refused as such")
    key = "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737"  # section 18.2
    if parse_public_key(key) is None or parse_public_key(key.upper()) is not None:
        problems.append("lowercase public keys only")
    return problems


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def load_events(rows: list) -> list[Event]:
    return [Event.from_json(row) for row in rows]


def _resigned(event: Event, seed: bytes, **changes: Any) -> Event:
    """A copy of `event` with `changes`, its hash recomputed and signed with `seed`."""
    changed = replace(event, hash_input=None, **changes)
    changed.hash = blake3.blake3(hash_input(changed)).digest()
    signer = Ed25519PrivateKey.from_private_bytes(seed)
    changed.signature = signer.sign(event_signature_message(changed.hash))
    return changed


def derived_cases(
    events: list[Event], seeds: dict[str, bytes]
) -> list[tuple[str, list[Event], tuple[int, str] | None]]:
    """Cases built from the intact log for the rules of sections 8, 10, 11 and 14.3 (step 2).

    Each changes one event and re-hashes and re-signs it with the key that signed it, so the
    only thing wrong is what the case is about. Each is (label, events, expected failure as
    (position, reason), or None when the log must verify).
    """
    genesis = events[0]
    rotation = next(e for e in events if e.type == KEY_ROTATED_TYPE)
    ordinary = next(e for e in events if e.position > 1 and e.stream != SYSTEM_STREAM)
    genesis_payload = json.loads(genesis.payload)
    rotation_payload = json.loads(rotation.payload)

    def changed(event: Event, **changes: Any) -> list[Event]:
        replaced = _resigned(event, seeds[event.key_id], **changes)
        return [replaced if e.position == event.position else e for e in events]

    def genesis_with(**members: str) -> str:
        return jcs({**genesis_payload, **members})

    def rotation_with(**members: str) -> str:
        return jcs({**rotation_payload, **members})

    weak = SMALL_ORDER_ENCODINGS[4]  # a point of order 8
    weak_id = key_id_of(bytes.fromhex(weak))
    uuid = ordinary.id
    at_genesis = (genesis.position, "bad_genesis")
    at_rotation = (rotation.position, "bad_key_rotation")
    at_ordinary = (ordinary.position, "malformed_event")
    duplicated = '{"format":"docket-log/0",' + genesis.payload[1:]
    return [
        ("event id in upper case", changed(ordinary, id=uuid.upper()), at_ordinary),
        ("event id without hyphens", changed(ordinary, id=uuid.replace("-", "")), at_ordinary),
        ("event id in braces", changed(ordinary, id="{" + uuid + "}"), at_ordinary),
        ("event id as a URN", changed(ordinary, id="urn:uuid:" + uuid), at_ordinary),
        (
            "genesis public key in upper case",
            changed(genesis, payload=genesis_with(
                public_key=genesis_payload["public_key"].upper())),
            at_genesis,
        ),
        (
            "genesis key of small order",
            changed(genesis, key_id=weak_id, payload=genesis_with(public_key=weak, key_id=weak_id)),
            at_genesis,
        ),
        (
            "genesis payload as an array",
            changed(genesis, payload=jcs([genesis_payload[name] for name in GENESIS_FIELDS])),
            at_genesis,
        ),
        (
            "genesis payload with a member given twice, the last one right",
            [_resigned(genesis, seeds[genesis.key_id], payload=duplicated)],
            at_genesis,
        ),
        (
            "acceptance signature in upper case",
            changed(rotation, payload=rotation_with(
                acceptance_signature=rotation_payload["acceptance_signature"].upper())),
            at_rotation,
        ),
        (
            "next public key in upper case",
            changed(rotation, payload=rotation_with(
                next_public_key=rotation_payload["next_public_key"].upper())),
            at_rotation,
        ),
        (
            "next key of small order",
            changed(rotation, payload=rotation_with(next_public_key=weak, next_key_id=weak_id)),
            at_rotation,
        ),
        (
            "rotation payload as an array",
            changed(rotation, payload=jcs([rotation_payload[name] for name in ROTATION_FIELDS])),
            at_rotation,
        ),
    ]


def describe(outcome: Summary | Failure) -> str:
    if isinstance(outcome, Failure):
        return f"fails at {outcome.position} with {outcome.reason} ({outcome.detail})"
    return f"verifies ({outcome.events} events)"


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("log-v1.json")
    problems = self_test()
    if problems:
        print("verify_vectors: encoder self-test failed: " + "; ".join(problems))
        return 2
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        events = load_events(document["events"])
    except (OSError, ValueError, KeyError, TypeError, InputError) as error:
        print(f"verify_vectors: cannot read {path}: {error}")
        return 2
    if document.get("format") != FORMAT:
        print(f"verify_vectors: {path} is not {FORMAT} but {document.get('format')!r}")
        return 2

    errors: list[str] = []

    # Keys: seed -> public key -> key id.
    seeds: dict[str, bytes] = {}
    for index, key in enumerate(document.get("keys", [])):
        seed = decode_hex(key.get("seed"), 32)
        if seed is None:
            errors.append(f"key {index}: seed is not 32 bytes of hex")
            continue
        public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
        public_bytes = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        if public_bytes.hex() != str(key.get("public_key", "")).lower():
            errors.append(f"key {index}: public key does not derive from the seed")
        if key_id_of(public_bytes) != key.get("key_id"):
            errors.append(f"key {index}: key id is not {key_id_of(public_bytes)}")
        seeds[key_id_of(public_bytes)] = seed

    # Hash inputs of the intact log, byte for byte; and, since Docket writes every payload in
    # JCS form, each hash input must also be the JCS encoding of the whole envelope.
    inputs_matched = 0
    for event in events:
        if not is_canonical_payload(event.payload):
            errors.append(f"event {event.position}: stored payload is not in JCS form")
        elif jcs_hash_input(event) != hash_input(event):
            errors.append(f"event {event.position}: hash input is not the JCS of the envelope")
        if not isinstance(event.hash_input, str):
            errors.append(f"event {event.position}: no hash_input recorded")
            continue
        ours = hash_input(event)
        theirs = event.hash_input.encode("utf-8", "surrogatepass")
        if ours != theirs:
            at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)
            at = min(len(ours), len(theirs)) if at is None else at
            errors.append(
                f"event {event.position}: hash input differs at byte {at}: "
                f"ours {ours[max(0, at - 20):at + 20]!r}, recorded {theirs[max(0, at - 20):at + 20]!r}"
            )
        else:
            inputs_matched += 1

    trusted = document.get("trusted_genesis_key")
    intact = verify_log(events, trusted, document.get("head"))
    if isinstance(intact, Failure):
        errors.append(f"intact log {describe(intact)}")

    cases = document.get("tampered", [])
    matched = 0
    for index, case in enumerate(cases):
        label = case.get("description", f"case {index}")
        expected = case.get("failure", {})
        try:
            tampered = load_events(case["events"])
        except (KeyError, TypeError, InputError) as error:
            errors.append(f"tampered case {index} ({label}): unreadable: {error}")
            continue
        case_trusted = case.get("trusted_genesis_key", trusted)
        outcome = verify_log(tampered, case_trusted, case.get("head"))
        if (
            isinstance(outcome, Failure)
            and outcome.position == expected.get("position")
            and outcome.reason == expected.get("reason")
        ):
            matched += 1
        else:
            errors.append(
                f"tampered case {index} ({label}): expected failure at {expected.get('position')} "
                f"with {expected.get('reason')}, but it {describe(outcome)}"
            )

    # Cases of our own, derived from the intact log (only when it verifies, and its keys are
    # listed, so that a case can fail for nothing but the rule it is about).
    derived_matched = 0
    derived: list = []
    if isinstance(intact, Summary) and all(event.key_id in seeds for event in events):
        derived = derived_cases(events, seeds)
    for label, case_events, expected_failure in derived:
        outcome = verify_log(case_events)
        if expected_failure is None:
            ok = isinstance(outcome, Summary)
        else:
            ok = (
                isinstance(outcome, Failure)
                and (outcome.position, outcome.reason) == expected_failure
            )
        if ok:
            derived_matched += 1
        else:
            want = "to verify" if expected_failure is None else f"failure {expected_failure}"
            errors.append(f"derived case ({label}): expected {want}, but it {describe(outcome)}")

    for error in errors:
        print(f"  {error}", file=sys.stderr)
    if isinstance(intact, Summary):
        intact_text = (
            f"intact log of {intact.events} events verifies (head {intact.head_hash[:16]}..., "
            f"{intact.key_rotations} key rotations, {intact.streams} streams)"
        )
    else:
        intact_text = f"intact log {describe(intact)}"
    status = "OK" if not errors else f"FAILED ({len(errors)} problems)"
    print(
        f"verify_vectors: {status}: {intact_text}; {inputs_matched}/{len(events)} hash inputs "
        f"identical; {matched}/{len(cases)} tampered cases fail exactly as expected; "
        f"{derived_matched}/{len(derived)} derived cases as expected"
    )
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
