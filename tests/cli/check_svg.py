"""Checks a map strata drew: well-formed XML, a title that fits the width, a legend, axes
with tick labels, tooltips on the cells, and a size proportionate to what it shows.
Usage: check_svg.py FILE MAX_KB"""
import sys
import xml.etree.ElementTree as ET

path, max_kb = sys.argv[1], float(sys.argv[2])
data = open(path, "rb").read()
if len(data) > max_kb * 1024:
    sys.exit(f"FAIL: {path}: {len(data) / 1024:.0f} KB, more than {max_kb:.0f} KB")
root = ET.fromstring(data)  # raises on malformed XML
ns = {"s": "http://www.w3.org/2000/svg"}
title = root.find("s:text", ns).text
if int(root.attrib["width"]) < 7 * len(title):
    sys.exit(f"FAIL: {path}: the title ({len(title)} characters) is wider than the map ({root.attrib['width']} px)")
groups = {g.attrib.get("id"): g for g in root.findall("s:g", ns)}
for want in ("legend", "cells", "axes"):
    if want not in groups:
        sys.exit(f"FAIL: {path}: no {want}")
labels = [t.text for t in groups["legend"].findall("s:text", ns)]
if len(labels) < 3:
    sys.exit(f"FAIL: {path}: legend {labels}")
ticks = [t.text for t in groups["axes"].findall("s:text", ns)]
if len(ticks) < 4 or "0" not in ticks:
    sys.exit(f"FAIL: {path}: tick labels {ticks}")
cells = groups["cells"].findall("s:rect", ns)
if not cells or any(c.find("s:title", ns) is None for c in cells):
    sys.exit(f"FAIL: {path}: cells without tooltips")
print(f"ok: {path}: {len(data) / 1024:.1f} KB, legend {labels}, {len(cells)} cell runs")
