#!/usr/bin/env python3
"""Independent verifier of Docket evidence bundles (format docket-evidence-bundle/1).

Written from docs/evidence-bundle.md and docs/log-format.md, so that the specifications, not the
Rust code, are what it checks against. The log format's building blocks (JSON as the format
reads it, JCS, hash inputs, strict Ed25519, key ids, system payloads, canonical ids and
timestamps) are those of the log-format verifier beside it, verify_vectors.py; the bundle's own
parts (digests, the Merkle tree, signed notes, checkpoints, the checks in their order) are here.

Run without arguments, it reads tests/vectors/bundle-v1.json (or the file given as the first
argument) and:

  1. verifies every intact bundle and compares the report with the recorded facts;
  2. verifies every tampered bundle and expects exactly the recorded failure (kind and position).

It prints one summary line and exits 0 when everything holds, 1 otherwise (2 on unusable input).

With `--bundle FILE [--genesis-key KEY_ID] [--witness-key VKEY]...` it verifies one bundle, as
`docket verify-bundle` does, and exits 0 when intact, 1 with the first failure, 2 when the file
is not a bundle.

Dependencies: Python 3.11 and the PyPI packages `blake3` and `cryptography`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verify_vectors as log  # noqa: E402  (the log-format verifier beside this file)

BUNDLE_FORMAT = "docket-evidence-bundle/1"
MAX_BUNDLE_BYTES = 1 << 30
MAX_NOTE_BYTES = 64 * 1024
MAX_NOTE_SIGNATURES = 100
ED25519_TYPE = 0x01
COSIGNATURE_TYPE = 0x04
U64 = 2**64 - 1
U32 = 2**32 - 1

SECTIONS = ("checkpoint", "keys", "events", "view")
MANIFEST_FIELDS = {
    "format", "created_at", "origin", "scope", "stream_version", "events", "tree_size",
    "export_id", "access_position", "digests",
}
EVENT_FIELDS = (
    "position", "id", "stream", "stream_version", "type", "schema_version", "payload", "actor",
    "request_id", "occurred_at", "recorded_at", "correlation_id", "causation_id",
    "idempotency_key", "prev_hash", "stream_prev_hash", "key_id", "hash", "signature",
)
NULLABLE = {
    "request_id", "correlation_id", "causation_id", "idempotency_key", "prev_hash",
    "stream_prev_hash",
}


class Failure(Exception):
    """The first failure of a bundle: a kind of section 6 and a position or None."""

    UNREADABLE = {"too_large", "malformed", "unsupported_format"}

    def __init__(self, kind: str, position: int | None, detail: str):
        super().__init__(f"{kind} at {position}: {detail}")
        self.kind = kind
        self.position = position
        self.detail = detail


def malformed(detail: str) -> Failure:
    return Failure("malformed", None, detail)


# ---------------------------------------------------------------------------------------------
# Digests (section 3.6)
# ---------------------------------------------------------------------------------------------


def digest(value: Any) -> str:
    return hashlib.sha256(log.jcs(value).encode("utf-8", "surrogatepass")).hexdigest()


# ---------------------------------------------------------------------------------------------
# The Merkle tree (log format section 16.1, RFC 9162 section 2.1)
# ---------------------------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(leaves: list[bytes]) -> bytes:
    """MTH straight from its definition (for the self-test)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(sibling, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---------------------------------------------------------------------------------------------
# Signed notes and checkpoints (log format section 16.2, C2SP signed-note and tlog-checkpoint)
# ---------------------------------------------------------------------------------------------


def valid_key_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def strict_b64decode(text: str) -> bytes | None:
    """Standard base64 with padding, in its one canonical spelling."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def parse_note(encoded: str) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """A note's text and its signature lines (name, key hash, signature); ValueError if bad."""
    if len(encoded.encode("utf-8", "surrogatepass")) > MAX_NOTE_BYTES:
        raise ValueError("note too large")
    split = encoded.rfind("\n\n")
    if split < 0:
        raise ValueError("no signatures")
    text, block = encoded[: split + 1], encoded[split + 2 :]
    if not text or not text.endswith("\n") or text.startswith("\n") or "\n\n" in text:
        raise ValueError("malformed text")
    if not block or not block.endswith("\n"):
        raise ValueError("no signatures")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise ValueError("too many signatures")
    signatures = []
    for line in lines:
        if not line.startswith("\u2014 "):
            raise ValueError("malformed signature line")
        name, space, encoded_signature = line[2:].partition(" ")
        raw = strict_b64decode(encoded_signature) if space else None
        if raw is None or not valid_key_name(name) or len(raw) < 5:
            raise ValueError("malformed signature line")
        signatures.append((name, raw[:4], raw[4:]))
    return text, signatures


def parse_checkpoint(text: str) -> tuple[str, int, bytes]:
    """Origin, size and root of a checkpoint body; ValueError if it is not one."""
    if not text.endswith("\n"):
        raise ValueError("body")
    lines = text[:-1].split("\n")
    if len(lines) != 3:
        raise ValueError("a checkpoint is three lines")
    origin, size, root = lines
    printable = all(0x21 <= ord(c) <= 0x7E for c in origin)
    if not printable or len(origin) > 255 or not valid_key_name(origin):
        raise ValueError("origin")
    if origin.startswith("cosignature/"):
        raise ValueError("origin")
    if not size.isascii() or not size.isdigit() or (len(size) > 1 and size.startswith("0")):
        raise ValueError("size")
    raw_root = strict_b64decode(root)
    if raw_root is None or len(raw_root) != 32:
        raise ValueError("root")
    return origin, int(size), raw_root


def key_hash(name: str, key_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def note_signed_by(text: str, signatures, name: str, key_type: int, public_key: bytes) -> bool:
    expected = key_hash(name, key_type, public_key)
    for signer, hashed, signature in signatures:
        if signer != name or hashed != expected:
            continue
        if key_type == ED25519_TYPE and log.verify_strict(public_key, text.encode(), signature):
            return True
        if key_type == COSIGNATURE_TYPE and len(signature) == 72:
            timestamp = int.from_bytes(signature[:8], "big")
            message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
            if log.verify_strict(public_key, message, signature[8:]):
                return True
    return False


def parse_verifier_key(text: str) -> tuple[str, int, bytes]:
    """A C2SP verifier key `<name>+<key hash hex>+<base64(type || key)>`; ValueError if bad."""
    # The name holds no `+`, but standard base64 may: only the first two separate fields.
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key has three parts")
    name, hashed, encoded = parts
    raw = strict_b64decode(encoded)
    if raw is None or len(raw) != 33 or raw[0] not in (ED25519_TYPE, COSIGNATURE_TYPE):
        raise ValueError("verifier key encoding")
    key_type, public_key = raw[0], raw[1:]
    point = log.decode_point(public_key)
    if point is None or log.is_small_order(point) or not valid_key_name(name):
        raise ValueError("verifier key")
    if key_hash(name, key_type, public_key).hex() != hashed:
        raise ValueError("verifier key hash")
    return name, key_type, public_key


# ---------------------------------------------------------------------------------------------
# Reading a bundle (section 5.2, steps 1 and 2)
# ---------------------------------------------------------------------------------------------


def is_uint(value: Any, limit: int = U64) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit


def refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_manifest(value: Any) -> dict:
    if not isinstance(value, dict) or not isinstance(value.get("format"), str):
        raise malformed("the manifest names no format")
    if value["format"] != BUNDLE_FORMAT:
        raise Failure("unsupported_format", None, f"format {value['format']!r}")
    if not set(value) <= MANIFEST_FIELDS:
        raise malformed("unknown manifest member")
    required = ("created_at", "origin", "scope", "events", "tree_size", "export_id", "digests")
    if any(name not in value for name in required):
        raise malformed("a manifest member is missing")
    for name in ("created_at", "origin", "export_id"):
        if not isinstance(value[name], str):
            raise malformed(f"manifest {name}")
    for name in ("events", "tree_size"):
        if not is_uint(value[name]):
            raise malformed(f"manifest {name}")
    for name in ("stream_version", "access_position"):
        if value.get(name) is not None and not is_uint(value[name]):
            raise malformed(f"manifest {name}")
    digests = value["digests"]
    if not isinstance(digests, dict) or not all(isinstance(d, str) for d in digests.values()):
        raise malformed("manifest digests")
    scope = value["scope"]
    if not isinstance(scope, dict):
        raise malformed("scope")
    present = {name for name, item in scope.items() if item is not None}
    if not set(scope) <= {"matter", "from_position", "to_position"}:
        raise malformed("scope")
    if present == {"matter"} and isinstance(scope["matter"], str):
        pass
    elif present == {"from_position", "to_position"} and all(
        is_uint(scope[name]) for name in present
    ):
        pass
    else:
        raise malformed("the scope is neither a matter nor a range")
    return value


def read_event(row: Any, where: str) -> tuple[log.Event, list[bytes]]:
    if not isinstance(row, dict) or not set(row) <= set(EVENT_FIELDS) | {"inclusion_proof"}:
        raise malformed(f"{where}: not a proven event")
    for name in EVENT_FIELDS:
        if name not in row and name not in NULLABLE:
            raise malformed(f"{where}: {name} missing")
    for name in ("position", "stream_version"):
        if not is_uint(row.get(name)):
            raise malformed(f"{where}: {name}")
    if not is_uint(row.get("schema_version"), U32):
        raise malformed(f"{where}: schema_version")
    try:
        event = log.Event.from_json({name: row.get(name) for name in EVENT_FIELDS})
    except log.InputError as error:
        raise malformed(f"{where}: {error}") from None
    proof_text = row.get("inclusion_proof")
    if not isinstance(proof_text, list):
        raise malformed(f"{where}: inclusion_proof")
    proof = [log.decode_hex(item, 32) for item in proof_text]
    if any(item is None for item in proof):
        raise malformed(f"{where}: inclusion_proof")
    return event, proof


def read_view(value: Any) -> dict:
    if not isinstance(value, dict) or not set(value) <= {"investigator", "events", "matter"}:
        raise malformed("view")
    if not isinstance(value.get("investigator"), str) or not isinstance(value.get("events"), list):
        raise malformed("view")
    for item in value["events"]:
        if not isinstance(item, dict) or set(item) != {"position", "payload"}:
            raise malformed("view event")
        if not is_uint(item["position"]):
            raise malformed("view event position")
    return value


def read(data: bytes) -> dict:
    # Step 1.
    if len(data) > MAX_BUNDLE_BYTES:
        raise Failure("too_large", None, "larger than this verifier reads")
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=refuse_constant)
    except (ValueError, RecursionError) as error:
        raise malformed(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise malformed("a bundle is a JSON object")
    if not set(document) <= {"manifest", *SECTIONS}:
        raise malformed("unknown member")
    manifest = read_manifest(document.get("manifest"))
    for name in ("checkpoint", "keys", "events"):
        if name not in document:
            raise malformed(f"no {name} section")

    # Step 2.
    digests = manifest["digests"]
    for name in digests:
        if name != "manifest" and name not in document:
            raise Failure("digest_mismatch", None, f"a digest of absent {name}")
    own = {name: item for name, item in manifest.items() if name != "digests"}
    if digests.get("manifest") != digest(own):
        raise Failure("digest_mismatch", None, "the manifest's own members")
    for name in SECTIONS:
        if name in document and digests.get(name) != digest(document[name]):
            raise Failure("digest_mismatch", None, f"the {name} section")
    if not isinstance(document["checkpoint"], str):
        raise malformed("checkpoint")
    sections = {}
    for name in ("keys", "events"):
        if not isinstance(document[name], list):
            raise malformed(name)
        sections[name] = [read_event(row, f"{name}[{i}]") for i, row in enumerate(document[name])]
    view = read_view(document["view"]) if "view" in document else None
    return {
        "manifest": manifest,
        "checkpoint": document["checkpoint"],
        "keys": sections["keys"],
        "events": sections["events"],
        "view": view,
    }


# ---------------------------------------------------------------------------------------------
# The checks (section 5.2, steps 3 to 9)
# ---------------------------------------------------------------------------------------------


def check_event_basics(event: log.Event, size: int) -> None:
    """Steps 4.1-4.3 and 7.1-7.3: in the tree, well formed, hashed."""
    if not 1 <= event.position <= size:
        raise Failure("beyond_checkpoint", event.position, "not in the checkpoint's tree")
    if not log.is_uuid(event.id):
        raise Failure("malformed_event", event.position, "event id")
    if not log.is_canonical_timestamp(event.occurred_at) or not log.is_canonical_timestamp(
        event.recorded_at
    ):
        raise Failure("malformed_event", event.position, "timestamps")
    if log.blake3.blake3(log.hash_input(event)).digest() != event.hash:
        raise Failure("hash_mismatch", event.position, "recomputed hash differs")


def check_signature(event: log.Event, public_key: bytes) -> None:
    message = log.event_signature_message(event.hash)
    if not log.verify_strict(public_key, message, event.signature):
        raise Failure("bad_signature", event.position, "signature does not verify")


def check_proof(event: log.Event, proof: list[bytes], size: int, root: bytes) -> None:
    if not verify_inclusion(event.position - 1, size, leaf_hash(event.hash), proof, root):
        raise Failure("bad_inclusion_proof", event.position, "proof does not reach the root")


class Keys:
    """The keys the key events introduced: (position, key id, public key), in order."""

    def __init__(self) -> None:
        self.introduced: list[tuple[int, str, bytes]] = []

    def at(self, position: int) -> tuple[int, str, bytes] | None:
        """The key in force at `position`: genesis at 1, else the last introduced before it."""
        if position == 1:
            return self.introduced[0] if self.introduced else None
        before = [key for key in self.introduced if key[0] < position]
        return before[-1] if before else None

    def after(self, size: int) -> tuple[int, str, bytes] | None:
        upto = [key for key in self.introduced if key[0] <= size]
        return upto[-1] if upto else None


def accept_genesis(event: log.Event, pinned: str | None) -> tuple[tuple[int, str, bytes], str]:
    def bad(detail: str) -> Failure:
        return Failure("bad_genesis", 1, detail)

    if (
        event.position != 1
        or event.type != log.GENESIS_TYPE
        or event.stream != log.SYSTEM_STREAM
        or event.stream_version != 1
    ):
        raise bad("not log.genesis at position 1")
    genesis = log.parse_system_payload(event.payload, log.GENESIS_FIELDS)
    if genesis is None:
        raise bad("malformed genesis payload")
    public_key = log.parse_public_key(genesis["public_key"])
    if public_key is None:
        raise bad("invalid public key")
    key_id = log.key_id_of(public_key)
    if genesis["format"] != log.FORMAT or genesis["key_id"] != key_id or event.key_id != key_id:
        raise bad("genesis key id or format does not match its public key")
    if pinned is not None and pinned != key_id:
        raise Failure("untrusted_genesis_key", 1, f"genesis key is {key_id}")
    return (1, key_id, public_key), genesis["log_id"]


def accept_rotation(event: log.Event) -> tuple[int, str, bytes]:
    def bad(detail: str) -> Failure:
        return Failure("bad_key_rotation", event.position, detail)

    if event.stream != log.SYSTEM_STREAM:
        raise bad("key rotations belong to the system stream")
    rotation = log.parse_system_payload(event.payload, log.ROTATION_FIELDS)
    if rotation is None:
        raise bad("malformed rotation payload")
    next_key = log.parse_public_key(rotation["next_public_key"])
    if next_key is None:
        raise bad("invalid next key")
    next_id = log.key_id_of(next_key)
    if rotation["previous_key_id"] != event.key_id or rotation["next_key_id"] != next_id:
        raise bad("rotation key ids do not match the keys")
    acceptance = log.decode_lower_hex(rotation["acceptance_signature"], 64)
    if acceptance is None:
        raise bad("malformed acceptance signature")
    message = log.key_acceptance_message(rotation["previous_key_id"], next_id)
    if not log.verify_strict(next_key, message, acceptance):
        raise bad("the incoming key did not sign its acceptance")
    return event.position, next_id, next_key


def key_in_force(keys: Keys, event: log.Event) -> bytes:
    key = keys.at(event.position)
    if key is None or event.key_id != key[1]:
        raise Failure("unknown_signing_key", event.position, "not the key in force")
    return key[2]


def check_keys(key_events, size: int, root: bytes, pinned: str | None) -> tuple[Keys, str]:
    """Step 4."""
    keys = Keys()
    log_id = ""
    if not key_events or key_events[0][0].position != 1:
        raise Failure("bad_genesis", 1, "the key events do not start with the genesis event")
    previous: log.Event | None = None
    for event, proof in key_events:
        check_event_basics(event, size)
        if previous is not None and event.position <= previous.position:
            raise Failure("out_of_order", event.position, "key events ascend")
        if event.stream != log.SYSTEM_STREAM:
            raise Failure("out_of_scope", event.position, "not the system stream")
        if event.stream_version != (1 if previous is None else previous.stream_version + 1):
            raise Failure("stream_version_gap", event.position, "system stream version")
        if event.stream_prev_hash != (None if previous is None else previous.hash):
            raise Failure("stream_chain_broken", event.position, "system stream link")
        if previous is None:
            genesis, log_id = accept_genesis(event, pinned)
            keys.introduced.append(genesis)
            signing_key = genesis[2]
        else:
            signing_key = key_in_force(keys, event)
            if event.type == log.KEY_ROTATED_TYPE:
                keys.introduced.append(accept_rotation(event))
        check_signature(event, signing_key)
        check_proof(event, proof, size, root)
        previous = event
    return keys, log_id


def check_events(events, key_events, keys: Keys, size: int, root: bytes) -> None:
    """Step 7."""
    listed = {event.position: event.hash for event, _ in key_events}
    for event, proof in events:
        check_event_basics(event, size)
        check_signature(event, key_in_force(keys, event))
        check_proof(event, proof, size, root)
        if event.stream == log.SYSTEM_STREAM and listed.get(event.position) != event.hash:
            raise Failure("keys_incomplete", event.position, "a system event not among the keys")


def check_scope(manifest: dict, events, size: int) -> None:
    """Step 8."""
    scope = manifest["scope"]
    stated = manifest.get("stream_version")
    if scope.get("matter") is not None:
        stream = "matter:" + scope["matter"]
        previous: log.Event | None = None
        for event, _ in events:
            if event.stream != stream:
                raise Failure("out_of_scope", event.position, f"belongs to {event.stream}")
            if previous is not None and event.position <= previous.position:
                raise Failure("out_of_order", event.position, "events ascend")
            if event.stream_version != (1 if previous is None else previous.stream_version + 1):
                raise Failure("stream_version_gap", event.position, "stream version")
            if event.stream_prev_hash != (None if previous is None else previous.hash):
                raise Failure("stream_chain_broken", event.position, "stream link")
            previous = event
        last = 0 if previous is None else previous.stream_version
        if stated is None:
            raise Failure("manifest_mismatch", None, "no stream version stated")
        if last < stated:
            raise Failure("scope_incomplete", None, f"ends at version {last}, not {stated}")
        if last > stated:
            raise Failure("manifest_mismatch", None, "more versions than stated")
    else:
        start, end = scope["from_position"], scope["to_position"]
        if start == 0 or start > end or end > size or stated is not None:
            raise Failure("manifest_mismatch", None, "not a range of the tree")
        expected = start
        previous = None
        for event, _ in events:
            if expected > end:
                raise Failure("out_of_scope", event.position, "beyond the range")
            if event.position != expected:
                raise Failure("position_gap", expected, f"found {event.position}")
            if previous is None:
                linked = start > 1 or event.prev_hash is None
            else:
                linked = event.prev_hash == previous.hash
            if not linked:
                raise Failure("chain_broken", event.position, "prev_hash")
            previous = event
            expected += 1
        if expected <= end:
            raise Failure("scope_incomplete", expected, f"the range ends at {end}")
    if manifest["events"] != len(events):
        raise Failure("manifest_mismatch", None, "event count")


def check_view(view: dict, events) -> None:
    """Step 9."""
    shown = view["events"]
    if len(shown) != len(events):
        raise Failure("view_mismatch", None, "one element per event")
    for item, (event, _) in zip(shown, events):
        if item["position"] != event.position:
            raise Failure("view_mismatch", event.position, "position")
        try:
            stored = log.parse_json(event.payload)
        except log.Malformed:
            raise Failure("view_mismatch", event.position, "stored payload is not JSON") from None
        shown_payload = item["payload"]
        private = stored.get("private") if isinstance(stored, dict) else None
        if isinstance(private, dict) and private.get("sealed") == "docket-seal/1":
            # A sealed part may be shown opened: compare everything else.
            stored = {k: v for k, v in stored.items() if k != "private"}
            if isinstance(shown_payload, dict):
                shown_payload = {k: v for k, v in shown_payload.items() if k != "private"}
        if log.jcs(stored) != log.jcs(shown_payload):
            raise Failure("view_mismatch", event.position, "payload differs")


def verify_bundle(data: bytes, pinned: str | None = None, witnesses: tuple = ()) -> dict:
    """Verifies a bundle's bytes; returns a report, or raises the first Failure."""
    bundle = read(data)
    manifest = bundle["manifest"]

    # Step 3.
    try:
        text, signatures = parse_note(bundle["checkpoint"])
        origin, size, root = parse_checkpoint(text)
    except ValueError as error:
        raise Failure("malformed_checkpoint", None, str(error)) from None
    if origin != manifest["origin"] or size != manifest["tree_size"]:
        raise Failure("manifest_mismatch", None, "origin or tree size")

    # Steps 4 to 6.
    keys, log_id = check_keys(bundle["keys"], size, root, pinned)
    signer = keys.after(size)
    if signer is None or not note_signed_by(text, signatures, origin, ED25519_TYPE, signer[2]):
        raise Failure("bad_checkpoint_signature", None, "not signed by the key in force")
    for name, key_type, public_key in witnesses:
        if not note_signed_by(text, signatures, name, key_type, public_key):
            raise Failure("missing_cosignature", None, f"no valid cosignature by {name}")

    # Steps 7 to 9.
    events = bundle["events"]
    check_events(events, bundle["keys"], keys, size, root)
    check_scope(manifest, events, size)
    if bundle["view"] is not None:
        check_view(bundle["view"], events)
    return {
        "events": len(events),
        "first_position": events[0][0].position if events else None,
        "last_position": events[-1][0].position if events else None,
        "tree_size": size,
        "key_rotations": len(keys.introduced) - 1,
        "cosigned_by": [name for name, _, _ in signatures if name != origin],
        "log_id": log_id,
        "genesis_key_id": keys.introduced[0][1],
        "checkpoint_key_id": signer[1],
    }


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def options_of(case: dict) -> tuple[str | None, tuple]:
    options = case.get("options", {})
    witnesses = tuple(parse_verifier_key(text) for text in options.get("witness_keys", []))
    return options.get("genesis_key"), witnesses


def outcome(data: bytes, pinned: str | None, witnesses: tuple) -> dict | Failure:
    try:
        return verify_bundle(data, pinned, witnesses)
    except Failure as failure:
        return failure


def self_test() -> list[str]:
    """The tree against RFC 6962's reference tree (certificate-transparency's test leaves)."""
    leaves = [bytes.fromhex(text) for text in (
        "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )]
    expected = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    problems = []
    if tree_root(leaves).hex() != expected:
        problems.append("the reference tree's root is wrong")
    return problems


def run_vectors(path: Path) -> int:
    try:
        vectors = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"verify_bundle: cannot read {path}: {error}", file=sys.stderr)
        return 2
    if vectors.get("format") != BUNDLE_FORMAT:
        print(f"verify_bundle: {path} is not a {BUNDLE_FORMAT} vectors file", file=sys.stderr)
        return 2
    errors = self_test()
    intact = 0
    for case in vectors["bundles"]:
        data = json.dumps(case["bundle"], ensure_ascii=False).encode()
        result = outcome(data, *options_of(case))
        if isinstance(result, Failure):
            errors.append(f"{case['description']}: expected intact, got {result}")
            continue
        differing = {k: (v, result.get(k)) for k, v in case["expect"].items() if result.get(k) != v}
        if differing:
            errors.append(f"{case['description']}: report differs: {differing}")
        else:
            intact += 1
    matched = 0
    for case in vectors["tampered"]:
        data = json.dumps(case["bundle"], ensure_ascii=False).encode()
        result = outcome(data, *options_of(case))
        expected = (case["failure"]["kind"], case["failure"]["position"])
        if isinstance(result, Failure) and (result.kind, result.position) == expected:
            matched += 1
        else:
            got = "intact" if isinstance(result, dict) else f"{result.kind} at {result.position}"
            errors.append(f"{case['description']}: expected {expected}, got {got}")
    for error in errors:
        print(f"  {error}", file=sys.stderr)
    status = "OK" if not errors else f"FAILED ({len(errors)} problems)"
    print(
        f"verify_bundle: {status}: {intact}/{len(vectors['bundles'])} intact bundles verify; "
        f"{matched}/{len(vectors['tampered'])} tampered bundles fail exactly as expected"
    )
    return 0 if not errors else 1


def run_bundle(path: Path, pinned: str | None, witness_texts: list[str]) -> int:
    try:
        witnesses = tuple(parse_verifier_key(text) for text in witness_texts)
        data = path.read_bytes()
    except (OSError, ValueError) as error:
        print(f"verify_bundle: {error}", file=sys.stderr)
        return 2
    result = outcome(data, pinned, witnesses)
    if isinstance(result, Failure):
        label = "UNREADABLE" if result.kind in Failure.UNREADABLE else "BROKEN"
        at = "" if result.position is None else f" at position {result.position}"
        print(f"{label}{at}: {result.kind} - {result.detail}")
        return 2 if result.kind in Failure.UNREADABLE else 1
    print(f"intact: {json.dumps(result)}")
    if pinned is None:
        print("warning: no --genesis-key given: the log's identity was taken from the bundle")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vectors", nargs="?", type=Path,
                        default=Path(__file__).resolve().parent / "bundle-v1.json")
    parser.add_argument("--bundle", type=Path, help="verify this bundle file instead")
    parser.add_argument("--genesis-key")
    parser.add_argument("--witness-key", action="append", default=[])
    args = parser.parse_args(argv[1:])
    if args.bundle is not None:
        return run_bundle(args.bundle, args.genesis_key, args.witness_key)
    return run_vectors(args.vectors)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
