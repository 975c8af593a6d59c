"""Tiny fake copies of the five public PAD data sets, with their real folder layout, file names,
subject and protocol lists and face annotation formats, for the importer tests.

Every video is 12 frames of 96x96 (mpeg4), a drawn face that OpenCV's Haar cascade finds in
frames 0-8 and an empty background in frames 9-11, so both the detector path and the "no face,
dropped and counted" path run. ``FACE_BOX`` is where the face is; annotation files give it for
frames 0-8 and nothing (a zero box, or no line) for the empty frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np

SIZE, N_FRAMES, FACE_FRAMES = 96, 12, range(9)
FACE_BOX = (8, 11, 80, 80)  # x, y, w, h: what the Haar cascade reports for the drawn face
EYES = ((36, 42), (60, 42))  # the drawn eye centres (x, y)
EYE_FRAMES = range(3, 9)
ROTATED_CLIENTS = (
    3,
    5,
)  # MSU-MFSD clients whose Android live video is stored upside down  # OULU-NPU eye lines: the face frames from frame 3 on
BACKGROUND = 90


def face_frame(shift: int = 0) -> np.ndarray:
    """(SIZE, SIZE, 3) RGB: a frontal cartoon face (skin oval, dark eyes and brows, mouth)."""
    img = np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
    cx, cy = SIZE // 2 + shift, SIZE // 2 + 4
    cv2.ellipse(img, (cx, cy), (30, 40), 0, 0, 360, (215, 175, 150), -1)
    for dx in (-12, 12):
        cv2.ellipse(img, (cx + dx, cy - 10), (7, 4), 0, 0, 360, (40, 40, 40), -1)
        cv2.line(img, (cx + dx - 8, cy - 19), (cx + dx + 8, cy - 19), (60, 50, 50), 3)
    cv2.line(img, (cx, cy - 6), (cx, cy + 8), (180, 140, 120), 3)
    cv2.ellipse(img, (cx, cy + 20), (11, 4), 0, 0, 360, (140, 60, 60), -1)
    return img


def write_video(
    path: Path, faces: range = FACE_FRAMES, upside_down: bool = False, corrupt: int | None = None
) -> Path:
    """A short mpeg4 video (container from the suffix): a face in ``faces``, else background.
    ``upside_down`` stores every frame with its rows reversed (as MSU-MFSD's six rotated
    Android videos); ``corrupt`` replaces that packet's bytes with noise (same time stamps),
    so decoding it raises mid-stream and the packets after it decode again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.options = {"qscale": "2"}
        k = 0
        for i in range(N_FRAMES):
            rgb = (
                face_frame((i % 3) - 1)
                if i in faces
                else np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
            )
            rgb = np.ascontiguousarray(rgb[::-1]) if upside_down else rgb
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                if k == corrupt:
                    bad = av.Packet(noise.bytes(packet.size))
                    bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                    bad.stream, packet = stream, bad
                container.mux(packet)
                k += 1
        for packet in stream.encode():
            container.mux(packet)
    return path


def replay_attack(root: Path, annotations: bool = True) -> Path:
    """train: clients 1-2, devel: 3, test: 4; per client one live and three attack videos."""
    box = " ".join(map(str, FACE_BOX))  # the .face format: frame x y w h
    splits = {"train": (1, 2), "devel": (3,), "test": (4,)}
    for split, clients in splits.items():
        for c in clients:
            names = [
                f"real/client{c:03d}_session01_webcam_authenticate_controlled_1",
                f"attack/fixed/attack_print_client{c:03d}_session01_highdef_photo_controlled",
                f"attack/hand/attack_mobile_client{c:03d}_session01_mobile_video_adverse",
                f"attack/fixed/attack_highdef_client{c:03d}_session01_highdef_photo_adverse",
            ]
            for name in names:
                write_video(root / split / f"{name}.mov")
                if annotations:
                    face = root / "face-locations" / split / f"{name}.face"
                    face.parent.mkdir(parents=True, exist_ok=True)
                    rows = [
                        f"{i} {box if i in FACE_FRAMES else '0 0 0 0'}" for i in range(N_FRAMES)
                    ]
                    face.write_text("\n".join(rows) + "\n")
    write_video(root / "enroll" / "train" / "client001_session01_webcam_enroll_controlled.mov")
    return root


def casia_fasd(root: Path) -> Path:
    """train_release/1-3 and test_release/1-2, each with 1.avi, 3.avi, 6.avi and HR_4.avi."""
    for folder, subjects in (("train_release", 3), ("test_release", 2)):
        for s in range(1, subjects + 1):
            for stem in ("1", "3", "6", "HR_4"):
                write_video(root / folder / str(s) / f"{stem}.avi")
    return root


def msu_mfsd(root: Path) -> Path:
    """Train clients 2, 3, 5 and test clients 1, 13; four videos each, .face beside them (boxes
    of the upright face). Clients 3 and 5's Android live videos are stored upside down, as in
    the real data set."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train_sub_list.txt").write_text("02\n03\n05\n")
    (root / "test_sub_list.txt").write_text("01\n13\n")
    x, y, w, h = FACE_BOX
    for c in (1, 2, 3, 5, 13):
        for name in (
            f"real/real_client{c:03d}_laptop_SD_scene01.mov",
            f"real/real_client{c:03d}_android_SD_scene01.mp4",
            f"attack/attack_client{c:03d}_laptop_SD_printed_photo_scene01.mov",
            f"attack/attack_client{c:03d}_android_SD_ipad_video_scene01.mp4",
        ):
            rotated = name.startswith("real/") and "android" in name and c in ROTATED_CLIENTS
            video = write_video(root / "scene01" / name, upside_down=rotated)
            rows = [f"{i},{x},{y},{x + w},{y + h}" for i in FACE_FRAMES]
            video.with_suffix(".face").write_text("\n".join(rows) + "\n")
    return root


def oulu_npu(root: Path) -> Path:
    """Users 01-02 (train), 21 (dev), 36 (test); phones 1-2, session 1; files 1, 2 and 4.
    Protocol_1 lists the phone-1 videos only, plus a mislabelled line and a missing video."""
    (left, top), (right, _) = EYES
    # as in OULU-NPU: absolute 0-based frame numbers, here starting at frame 3 (frames 0-2,
    # which do show the face, have no line: the detector finds them), and rows of zeros where
    # the eyes were not found (frames 9-11)
    eyes = "".join(f"{i}, {left}, {top}, {right}, {top}\n" for i in EYE_FRAMES)
    eyes += "".join(f"{i}, 0, 0, 0, 0\n" for i in range(EYE_FRAMES[-1] + 1, N_FRAMES))
    lists: dict[str, list[str]] = {"Train": [], "Dev": [], "Test": []}
    for folder, users in (("Train", (1, 2)), ("Dev", (21,)), ("Test", (36,))):
        for user in users:
            for phone in (1, 2):
                for file in (1, 2, 4):
                    stem = f"{phone}_1_{user:02d}_{file}"
                    video = write_video(root / f"{folder}_files" / f"{stem}.avi")
                    video.with_suffix(".txt").write_text(eyes)
                    if phone == 1:
                        label = "+1" if file == 1 else ("-2" if folder == "Test" else "-1")
                        lists[folder].append(f"{label},{stem}")
    lists["Train"] += ["+1,1_1_02_2", "-1,1_1_03_2"]  # label disagrees; listed but missing
    protocol = root / "Protocols" / "Protocol_1"
    protocol.mkdir(parents=True)
    for name, lines in lists.items():
        (protocol / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root


def write_image(path: Path, face: bool = True, scale: int = 2) -> Path:
    """A JPEG still of the drawn face (or of background), ``scale`` times the video size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = face_frame() if face else np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
    rgb = cv2.resize(rgb, (SIZE * scale, SIZE * scale), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return path


CELEBA_TYPES = (1, 3, 4, 7, 9, 10)  # spoof types in the fake CelebA-Spoof: print, masks, replay


def celeba_vector(spoof_type: int, illumination: int, environment: int) -> list[int]:
    """A 44-value CelebA-Spoof label: 40 face attributes, spoof type, light, place, live/spoof."""
    return [0] * 40 + [spoof_type, illumination, environment, int(spoof_type != 0)]


def celeba_spoof(root: Path) -> Path:
    """Train subjects 1-4, test subjects 101-102; per subject one live image and one spoof image
    per type in ``CELEBA_TYPES`` (lighting and place cycling), each with its ``_BB.txt`` box
    in the 224 x 224 frame. Plus a listed image that is missing and a mislabelled entry."""
    x, y, w, h = (round(v * 224 / SIZE) for v in FACE_BOX)
    labels: dict[str, dict] = {"train": {}, "test": {}}
    for split, subjects in (("train", (1, 2, 3, 4)), ("test", (101, 102))):
        for s in subjects:
            items = [("live", 0, 0, 0)] + [
                ("spoof", t, 1 + k % 4, 1 + k % 2) for k, t in enumerate(CELEBA_TYPES)
            ]
            for n, (kind, t, light, place) in enumerate(items):
                key = f"Data/{split}/{s}/{kind}/{n:06d}.jpg"
                image = write_image(root / key)
                image.with_name(f"{n:06d}_BB.txt").write_text(f"{x} {y} {w} {h} 0.99\n")
                labels[split][key] = celeba_vector(t, light, place)
    labels["train"]["Data/train/1/spoof/999999.jpg"] = celeba_vector(1, 1, 1)  # not on disk
    labels["train"]["Data/train/2/spoof/000001.jpg"] = celeba_vector(0, 0, 0)  # "live", in spoof/
    metas = root / "metas" / "intra_test"
    metas.mkdir(parents=True)
    for split, table in labels.items():
        (metas / f"{split}_label.json").write_text(json.dumps(table))
    return root


PHOTO_FACE = (165, 110, 205, 220)  # x, y, w, h of the face in matplotlib's grace_hopper.jpg


def photo_variants() -> list[tuple[str, np.ndarray, tuple[int, int, int, int]]]:
    """A real photograph (the portrait of Grace Hopper that ships with matplotlib) in 14
    variants a capture meets: scale, in-plane rotation, light, blur, noise, a small face in a
    720p frame, a face cut by the frame edge; (what, RGB frame, where the face is)."""
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    x, y, bw, bh = PHOTO_FACE
    out = []
    for s in (1.0, 0.5, 0.25, 0.15):
        small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        out.append((f"scale {s}", small, tuple(round(v * s) for v in PHOTO_FACE)))
    for angle in (-30, -15, 15, 30):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cx, cy = m @ np.array([x + bw / 2, y + bh / 2, 1.0])
        box = (round(cx - bw / 2), round(cy - bh / 2), bw, bh)
        out.append((f"rotated {angle} deg", cv2.warpAffine(rgb, m, (w, h)), box))
    noise = np.random.default_rng(0).normal(0, 25, rgb.shape)
    out += [
        ("dark (x 0.25)", (rgb * 0.25).astype(np.uint8), PHOTO_FACE),
        ("bright (+90)", np.clip(rgb + 90.0, 0, 255).astype(np.uint8), PHOTO_FACE),
        ("blurred (sigma 4)", cv2.GaussianBlur(rgb, (0, 0), 4), PHOTO_FACE),
        ("noisy (sigma 25)", np.clip(rgb + noise, 0, 255).astype(np.uint8), PHOTO_FACE),
    ]
    frame = np.full((720, 1280, 3), 100, np.uint8)
    quarter = cv2.resize(rgb, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    frame[300 : 300 + h // 4, 900 : 900 + w // 4] = quarter
    small_box = (900 + x // 4, 300 + y // 4, bw // 4, bh // 4)
    out.append(("small face in a 720p frame", frame, small_box))
    out.append(("cut by the frame edge", rgb[:, w // 3 :].copy(), (x - w // 3, y, bw, bh)))
    return out


BUILDERS = {
    "replay-attack": replay_attack,
    "casia-fasd": casia_fasd,
    "msu-mfsd": msu_mfsd,
    "oulu-npu": oulu_npu,
    "celeba-spoof": celeba_spoof,
}
