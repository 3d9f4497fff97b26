#!/usr/bin/env python3
"""Decodes ESC/POS printer bytes (stdin) by the Epson command table, independently of the
node's encoder, into JSON (stdout): the printed lines with their emphasis, and the
initialize, code page, feed, drawer kick and cut commands met. An unknown command or a byte
sequence the table does not allow exits 2, naming the offset."""

import json
import sys

ESC, GS, LF = 0x1B, 0x1D, 0x0A


def fail(offset, what):
    print(f"offset {offset}: {what}", file=sys.stderr)
    sys.exit(2)


def decode(data):
    out = {"init": False, "codepage": None, "lines": [], "feed": 0, "kick": None,
           "cut": None, "after_cut": 0}
    line, bold, line_bold, i = bytearray(), False, False, 0
    while i < len(data):
        b = data[i]
        if out["cut"] is not None:
            out["after_cut"] += 1
            i += 1
            continue
        if b == LF:
            out["lines"].append({"text": line.decode("cp437"), "bold": line_bold})
            line, line_bold = bytearray(), bold
            i += 1
        elif b == ESC:
            if i + 1 >= len(data):
                fail(i, "ESC at the end")
            c = data[i + 1]
            if c == 0x40:  # ESC @ initialize
                out["init"], bold, i = True, False, i + 2
            elif c == 0x74:  # ESC t n: code page
                out["codepage"], i = data[i + 2], i + 3
            elif c == 0x45:  # ESC E n: emphasis
                bold = data[i + 2] & 1 == 1
                if bold and not line:
                    line_bold = True
                i += 3
            elif c == 0x64:  # ESC d n: print and feed n lines
                out["feed"] += data[i + 2]
                i += 3
            elif c == 0x70:  # ESC p m t1 t2: generate pulse (drawer kick)
                m, t1, t2 = data[i + 2], data[i + 3], data[i + 4]
                if m not in (0, 1, 48, 49):
                    fail(i, f"ESC p pin {m}")
                out["kick"] = {"pin": m & 1, "on_ms": t1 * 2, "off_ms": t2 * 2}
                i += 5
            else:
                fail(i, f"unknown ESC 0x{c:02x}")
        elif b == GS:
            c = data[i + 1] if i + 1 < len(data) else None
            if c == 0x56:  # GS V m [n]: cut
                m = data[i + 2]
                if m in (0, 1, 48, 49):
                    out["cut"], i = {"partial": m & 1 == 1, "feed": 0}, i + 3
                elif m in (65, 66):
                    out["cut"], i = {"partial": m == 66, "feed": data[i + 3]}, i + 4
                else:
                    fail(i, f"GS V {m}")
            else:
                fail(i, f"unknown GS {c}")
        elif b < 0x20:
            fail(i, f"control byte 0x{b:02x}")
        else:
            line.append(b)
            i += 1
    if line:
        fail(len(data), "a line never printed (no LF)")
    return out


if __name__ == "__main__":
    json.dump(decode(sys.stdin.buffer.read()), sys.stdout)
