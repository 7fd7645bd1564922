#!/usr/bin/env python3
"""Draws the Bình Yên icon (a gold star on a police-blue shield) as RGBA PNGs, no libraries."""
import math, struct, sys, zlib, pathlib

def inside_shield(x, y):
    # x, y in [0,1]; a shield: rounded top, pointed bottom
    if y < 0.08 or y > 0.95: return False
    half = 0.40 if y < 0.55 else 0.40 * (0.95 - y) / 0.40
    return abs(x - 0.5) <= half

def inside_star(x, y, cx=0.5, cy=0.45, r=0.22):
    ang = math.atan2(y - cy, x - cx) + math.pi / 2
    d = math.hypot(x - cx, y - cy)
    k = (ang % (2 * math.pi / 5)) / (2 * math.pi / 5)
    # distance to the star edge, interpolated between the outer and inner radius
    edge = r * (0.45 + 0.55 * abs(1 - 2 * k))
    return d <= edge

def pixel(x, y, size):
    s = 4; acc = [0, 0, 0, 0]
    for i in range(s):
        for j in range(s):
            u, v = (x + (i + .5) / s) / size, (y + (j + .5) / s) / size
            if inside_shield(u, v):
                c = (242, 196, 48, 255) if inside_star(u, v) else (24, 63, 122, 255)
            else:
                c = (0, 0, 0, 0)
            for k in range(4): acc[k] += c[k]
    return bytes(a // (s * s) for a in acc)

def png(size):
    rows = b"".join(b"\x00" + b"".join(pixel(x, y, size) for x in range(size)) for y in range(size))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "icons")
for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
    (out / name).write_bytes(png(size))
