"""What ``defocus cull`` writes: ``report.csv``, ``report.json``, ``report.html`` (a contact sheet that opens from
disk) and XMP sidecars. A report is built from rows — one small dict per photo — so a folder of any size needs no
more memory than its rows.
"""

from __future__ import annotations

import csv
import html
import io as _io
import json
import math
from pathlib import Path

from ..io import StagedFiles
from .core import SCORES, VERDICTS

#: Report columns, in order. ``subject`` is "x,y,w,h" in fractions of the frame; ``thumbnail`` is relative to the
#: report's folder; ``error`` is empty for photos that were judged.
COLUMNS = ("path", "verdict", "confidence", *SCORES, "subject", "width", "height", "thumbnail", "error")

#: The report file names inside the output folder.
REPORT_FILES = ("report.csv", "report.json", "report.html")

#: XMP rating and colour label per verdict. 3 stars, not 5: the verdict says the focus is right, not that the
#: picture is good, and leaves 4 and 5 to the photographer. Labels are the colour names darktable, digiKam and
#: Lightroom share.
XMP_RATING = {"sharp": 3, "shallow-dof": 3, "missed-focus": 1}
XMP_LABEL = {"sharp": "Green", "shallow-dof": "Blue", "missed-focus": "Red"}
#: Namespace of the verdict fields defocus adds to its sidecars (beside xmp:Rating and xmp:Label).
XMP_NAMESPACE = "https://github.com/defocus/defocus/ns/cull/1.0/"


def sort_rows(rows: list[dict]) -> list[dict]:
    """Best first: by verdict (sharp, shallow-dof, missed-focus), then the most confident first within ``sharp``
    and ``shallow-dof`` and the least confident first within ``missed-focus`` (the nearest misses, worth a look);
    photos that could not be read last, by path."""
    def key(row):
        if row.get("error"):
            return (len(VERDICTS), 0.0, str(row["path"]))
        rank = VERDICTS.index(row["verdict"])
        confidence = row["confidence"] if rank < 2 else -row["confidence"]
        return (rank, -confidence, str(row["path"]))
    return sorted(rows, key=key)


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _csv_value(value):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else value


def _csv_bytes(rows: list[dict]) -> bytes:
    text = _io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(row.get(c)) for c in COLUMNS])
    return text.getvalue().encode("utf-8")


def _json_bytes(rows: list[dict]) -> bytes:
    return (json.dumps([{c: _json_value(row.get(c)) for c in COLUMNS} for row in rows], indent=1) + "\n").encode()


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1em;background:#f4f4f4}
nav button{font-size:1em;margin:0 .3em .8em 0;padding:.3em .8em;border:1px solid #888;border-radius:4px;background:#fff}
nav button.on{background:#333;color:#fff}
#sheet{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;width:330px;background:#fff;border:3px solid #ccc;border-radius:4px;padding:4px}
figure.sharp{border-color:#3a3}figure.shallow-dof{border-color:#38c}figure.missed-focus{border-color:#c33}
figure.error{border-color:#888}
figure img{max-width:320px;max-height:320px;display:block;margin:auto}
figcaption{font-size:.8em;word-break:break-all}
figcaption b{font-size:1.1em}
table{font-size:.85em;border-collapse:collapse}td{padding:0 .5em 0 0}
"""

_SCRIPT = """
function show(v){for(const f of document.querySelectorAll('figure'))f.hidden=!(v==='all'||f.dataset.verdict===v);
for(const b of document.querySelectorAll('nav button'))b.classList.toggle('on',b.dataset.show===v)}
"""


def _html_bytes(rows: list[dict], title: str) -> bytes:
    counts = {v: sum(r.get("verdict") == v and not r.get("error") for r in rows) for v in VERDICTS}
    n_err = sum(bool(r.get("error")) for r in rows)
    buttons = [f'<button data-show="all" class="on" onclick="show(\'all\')">all ({len(rows)})</button>']
    buttons += [f'<button data-show="{v}" onclick="show(\'{v}\')">{v} ({counts[v]})</button>' for v in VERDICTS]
    if n_err:
        buttons.append(f'<button data-show="error" onclick="show(\'error\')">unreadable ({n_err})</button>')
    figures = []
    for row in rows:
        path = Path(str(row["path"]))
        name = html.escape(path.name)
        link = html.escape(path.resolve().as_uri(), quote=True)
        if row.get("error"):
            figures.append(f'<figure class="error" data-verdict="error"><figcaption><b>unreadable</b><br>'
                           f'<a href="{link}">{name}</a><br>{html.escape(str(row["error"]))}</figcaption></figure>')
            continue
        verdict = row["verdict"]
        cells = "".join(f"<tr><td>{k.replace('_', ' ')}</td><td>{_csv_value(row.get(k))}</td></tr>" for k in SCORES)
        image = (f'<a href="{link}"><img loading="lazy" src="{html.escape(row["thumbnail"], quote=True)}" '
                 f'alt="{name}"></a>' if row.get("thumbnail") else "")
        figures.append(f'<figure class="{verdict}" data-verdict="{verdict}">{image}<figcaption><b>{verdict}</b> '
                       f'({row["confidence"]:.2f}) <a href="{link}">{name}</a><table>{cells}</table>'
                       f'</figcaption></figure>')
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>\n<h1>{html.escape(title)}</h1>\n'
            '<p>Out-of-focus regions are dimmed and tinted blue. Sorted best first.</p>\n'
            f'<nav>{"".join(buttons)}</nav>\n<div id="sheet">\n' + "\n".join(figures) + "\n</div></body></html>\n")
    return page.encode("utf-8")


def write_reports(rows: list[dict], out: Path, *, force: bool = False, title: str = "defocus cull") -> list[Path]:
    """Write ``report.csv``, ``report.json`` and ``report.html`` into ``out`` from ``rows`` (sorted best first
    here), together and atomically; an existing report is replaced only with ``force``."""
    rows = sort_rows(rows)
    contents = {"report.csv": _csv_bytes(rows), "report.json": _json_bytes(rows),
                "report.html": _html_bytes(rows, title)}
    with StagedFiles(force) as stage:
        for name in REPORT_FILES:
            stage.write(out / name, lambda f, data=contents[name]: f.write(data))
    return [out / name for name in REPORT_FILES]


def sidecar_path(photo: Path, naming: str = "full") -> Path:
    """Where a photo's XMP sidecar goes: ``IMG_1.CR2.xmp`` (``naming="full"``, what darktable and digiKam read)
    or ``IMG_1.xmp`` (``"stem"``, what Lightroom reads for RAW files and digiKam with its compatibility setting)."""
    return photo.with_name(photo.name + ".xmp") if naming == "full" else photo.with_suffix(".xmp")


def xmp_packet(verdict: str, confidence: float, scores: dict[str, float]) -> bytes:
    """An XMP sidecar with ``xmp:Rating`` and ``xmp:Label`` for a verdict, and the verdict, confidence and scores
    under defocus's own namespace (which other programs keep and ignore)."""
    extra = "".join(f'\n    defocus:{"".join(w.title() for w in k.split("_"))}="{v:.4f}"'
                    for k, v in scores.items() if math.isfinite(v))
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:defocus="{XMP_NAMESPACE}"
    xmp:Rating="{XMP_RATING[verdict]}"
    xmp:Label="{XMP_LABEL[verdict]}"
    defocus:Verdict="{verdict}"
    defocus:Confidence="{confidence:.4f}"{extra}/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
""".encode("utf-8")


def stage_sidecar(stage: StagedFiles, photo: Path, verdict: str, confidence: float, scores: dict[str, float],
                  naming: str = "full") -> Path:
    """Stage a photo's sidecar (placed when ``stage`` commits; an existing one only replaced with force)."""
    data = xmp_packet(verdict, confidence, scores)
    return stage.write(sidecar_path(photo, naming), lambda f: f.write(data))
