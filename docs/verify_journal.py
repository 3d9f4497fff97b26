#!/usr/bin/env python3
"""Verifies an export of a FusionCommerce Edge journal (`fusion journal export`), following
docs/JOURNAL.md alone: it shares no code with the node.

    python3 docs/verify_journal.py journal.jsonl [--key HEX]

--key is the public key you trust for the origin (e.g. the endpoint id the hub enrolled);
without it, the keys the export's header names are used, which proves the journal is intact
and signed by them, not who holds them. Exits 0 and prints "ok ..." when every line verifies,
else 1 and the first bad seq.

Needs Python 3.8+ and the `cryptography` package (Ed25519).
"""

import argparse
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

ENTRY_TAG = b"fusion-journal-entry/1"
CHECKPOINT_TAG = b"fusion-journal-checkpoint/1"


class Bad(Exception):
    def __init__(self, seq, reason):
        super().__init__(f"seq {seq}: {reason}")
        self.seq = seq


def name_bytes(origin):
    raw = origin.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def entry_hash(prev, origin, seq, envelope):
    return hashlib.sha256(
        ENTRY_TAG + prev + seq.to_bytes(8, "big") + name_bytes(origin) + envelope
    ).digest()


def checkpoint_message(origin, seq, hash_):
    return CHECKPOINT_TAG + name_bytes(origin) + seq.to_bytes(8, "big") + hash_


def varint(data, at):
    """A postcard unsigned varint (LEB128) at `at`: (value, next offset)."""
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def envelope_head(envelope):
    """The envelope's first fields (docs/JOURNAL.md, "The envelope's head"):
    (event id hex, schema version, origin, seq)."""
    length, at = varint(envelope, 0)
    if length != 16:
        raise ValueError("the event id is not 16 bytes")
    event_id = envelope[at : at + 16].hex()
    at += 16
    schema_version, at = varint(envelope, at)
    length, at = varint(envelope, at)
    origin = envelope[at : at + length].decode("utf-8")
    at += length
    seq, at = varint(envelope, at)
    return event_id, schema_version, origin, seq


def key_at(keys, seq):
    chosen = None
    for from_seq, key in keys:
        if from_seq <= seq:
            chosen = key
    return chosen


def verify(lines, trusted_key=None):
    header = json.loads(lines[0])
    if header.get("journal") != "fusion-journal/1":
        raise Bad(0, "not a fusion-journal/1 export")
    origin = header["origin"]
    keys = sorted(
        (k["fromSeq"], bytes.fromhex(k["publicKey"])) for k in header["keys"]
    )
    if trusted_key is not None:
        keys = [(1, bytes.fromhex(trusted_key))]
    seq = header["fromSeq"] - 1
    prev = bytes.fromhex(header["prev"])
    signed = seq
    for text in lines[1:]:
        line = json.loads(text)
        seq += 1
        if line["seq"] != seq:
            raise Bad(seq, f"found seq {line['seq']}: a gap or a line out of order")
        if bytes.fromhex(line["prev"]) != prev:
            raise Bad(seq, "its prev is not the hash of the line before")
        envelope = bytes.fromhex(line["envelope"])
        hash_ = entry_hash(prev, origin, seq, envelope)
        if hash_.hex() != line["hash"]:
            raise Bad(seq, "its envelope does not hash to its hash: it was changed")
        try:
            event_id, _, env_origin, env_seq = envelope_head(envelope)
        except (ValueError, UnicodeDecodeError) as e:
            raise Bad(seq, f"its envelope is unreadable: {e}")
        if (env_origin, env_seq) != (origin, seq):
            raise Bad(seq, f"its envelope says {env_origin} seq {env_seq}")
        event = line["event"]
        if (event["origin"], event["seq"]) != (origin, seq) or event[
            "eventId"
        ].replace("-", "") != event_id:
            raise Bad(seq, "its JSON event is not the one its envelope holds")
        if "checkpoint" in line:
            key = key_at(keys, seq)
            if key is None:
                raise Bad(seq, "no key is in force at this seq")
            try:
                Ed25519PublicKey.from_public_bytes(key).verify(
                    bytes.fromhex(line["checkpoint"]),
                    checkpoint_message(origin, seq, hash_),
                )
            except InvalidSignature:
                raise Bad(signed + 1, f"the checkpoint at seq {seq} is not signed by the key")
            signed = seq
        prev = hash_
    if signed != seq:
        raise Bad(signed + 1, f"no checkpoint covers seq {signed + 1} to {seq}")
    return origin, header["fromSeq"], seq


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export")
    parser.add_argument("--key", help="the origin's public key you trust, hex")
    args = parser.parse_args()
    with open(args.export, encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    try:
        origin, first, last = verify(lines, args.key)
    except Bad as bad:
        print(f"bad: {bad}")
        return 1
    except (KeyError, ValueError, IndexError) as e:
        print(f"bad: the export is malformed: {e!r}")
        return 1
    print(f"ok: {origin} seq {first} to {last}: chained, and every line covered by a valid signature")
    return 0


if __name__ == "__main__":
    sys.exit(main())
