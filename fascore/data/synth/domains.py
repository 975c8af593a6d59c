"""THE parameter table of SynthFAS: four capture domains, each a camera, a place and the attack
instruments found there. Every number that shapes the data lives here, with its physical reason.

Units. Lengths on the attack instruments (halftone dot pitch, screen pixel pitch) are in *output
pixels* of the face crop, so a preset at 64 px and one at 112 px show the same instruments at the
same relative scale. Colours are linear RGB factors in [0, 1]. The camera's sensor resolution is
``sensor_scale`` sensor pixels per output pixel: above 1 the crop is downsampled (sharp), below 1 it
is upsampled (soft).
"""

from __future__ import annotations

from dataclasses import dataclass

from fascore.errors import FascoreError

RGB = tuple[float, float, float]
Range = tuple[float, float]


@dataclass(frozen=True)
class Camera:
    """The capture camera: optics, sensor, image signal processor and encoder."""

    name: str
    sensor_scale: float  # sensor pixels per output pixel across the face crop
    blur: float  # optics + motion point-spread sigma, in output pixels
    read_noise: float  # signal-independent sensor noise (std, linear units)
    shot_noise: float  # photon noise: std = shot_noise * sqrt(signal)
    wb_bias: RGB  # residual white-balance error of the camera's AWB (gains per channel)
    awb: float  # how far auto white balance pulls the scene to grey (0 none, 1 full grey-world)
    saturation: float  # colour-matrix strength (1 = neutral; <1 cheap sensor, >1 vivid ISP)
    exposure: float  # auto-exposure target for the mean of the central region (linear)
    contrast: float  # tone-curve slope at mid-grey (1 = plain sRGB gamma)
    sharpen: float  # unsharp-mask amount of the ISP (phones sharpen hard)
    vignetting: float  # fractional fall-off of light at the crop corner (cos^4 + lens shading)
    jpeg_quality: int  # encoder quality of the stored frame


@dataclass(frozen=True)
class Place:
    """The capture environment: light and background style."""

    light_rgb: RGB  # colour of the dominant illuminant
    light_jitter: float  # session-to-session spread of that colour (relative, per channel)
    light_level: Range  # illuminance range over sessions (1 = a well-lit studio)
    key: float  # directional (key) share of the light; the rest is ambient
    key_from_above: float  # how far the key light comes from above (0 side, 1 overhead)
    background: str  # background style drawn behind live subjects (see faces.BACKGROUNDS)


@dataclass(frozen=True)
class Printer:
    """A printer and its paper: what a print attack looks like up close."""

    name: str
    dot_pitch: float  # halftone cell size in output pixels at the usual holding distance
    gamut: float  # share of the saturation of the source photo the inks can reproduce
    black: float  # reflectance of full ink (inks never reach zero reflectance)
    paper: RGB  # reflectance of blank paper (its tint)
    grain: float  # paper-fibre texture amplitude (relative)
    gloss: float  # specular strength of the sheet (glossy photo paper > plain paper)
    bleed: float  # ink spread: 0 crisp dots (laser) .. 1 continuous tone (dye-sub, silver halide)
    picture_blur: float  # blur of the printed picture in output pixels (a low-resolution source)


@dataclass(frozen=True)
class Screen:
    """A display used for replay attacks."""

    name: str
    pixel_pitch: float  # display pixel pitch in output pixels at the usual holding distance
    gamma: float  # display gamma (sRGB content is shown with this exponent instead of 2.2)
    tint: RGB  # white point of the panel (cold LCD backlights are bluish, OLEDs vary)
    brightness: float  # emitted luminance relative to a white sheet under the site's light
    fill: float  # share of each pixel that emits (the black matrix between subpixels)
    glare: float  # strength of mirror reflections of the room on the cover glass
    black: float  # light leaking through black pixels (LCD backlight bleed)
    picture_blur: float  # blur of the replayed recording in output pixels (its source quality)


@dataclass(frozen=True)
class MaskKind:
    """A worn mask printed with the victim's face."""

    name: str
    gamut: float  # colour fidelity of the printed face
    texture: float  # surface texture amplitude (paper fibre or resin grain)
    relief: float  # 3-D shape of the mask (0 flat paper, 1 moulded face)
    rim: float  # darkness of the shadow along the mask's cut edge
    gloss: float  # specular strength of the surface


@dataclass(frozen=True)
class Domain:
    """One capture domain: a camera in a place, and the attack instruments available there."""

    name: str
    summary: str
    camera: Camera
    place: Place
    printers: tuple[Printer, ...]
    screens: tuple[Screen, ...]
    masks: tuple[MaskKind, ...]
    edge_prob: float  # chance that an instrument's border (paper edge, bezel) enters the crop


# A laptop shows up in both the studio and the office.
LAPTOP_LCD = Screen(
    name="laptop-lcd",
    pixel_pitch=1.45,
    gamma=2.4,  # laptop panels are often darker in the mid-tones
    tint=(0.98, 1.0, 1.03),
    brightness=0.9,
    fill=0.70,
    glare=0.10,
    black=0.05,
    picture_blur=0.2,
)

DOMAINS: dict[str, Domain] = {
    # Source domain: a lab capture, good camera, controlled light. Its attack cues are fine
    # textures (halftone dots, screen moire) that only a sharp, clean camera resolves.
    "studio": Domain(
        name="studio",
        summary="lab capture: sharp high-resolution camera, soft daylight, plain backdrop",
        camera=Camera(
            name="studio-dslr",
            sensor_scale=2.0,  # large sensor: the face crop is oversampled, then downsized
            blur=0.35,  # good lens on a tripod: nearly diffraction-limited
            read_noise=0.003,  # large pixels at low ISO
            shot_noise=0.004,
            wb_bias=(1.0, 1.0, 1.0),  # white balance set on a grey card
            awb=0.5,  # grey-card preset plus mild auto correction
            saturation=1.05,  # neutral colour science
            exposure=0.20,  # metered exposure, no clipping
            contrast=1.0,
            sharpen=0.1,
            vignetting=0.05,  # long lens: little fall-off
            jpeg_quality=95,  # archival quality
        ),
        place=Place(
            light_rgb=(1.0, 0.99, 0.97),  # daylight-balanced soft boxes
            light_jitter=0.03,  # the same lamps every session
            light_level=(0.9, 1.1),
            key=0.45,  # soft key plus fill
            key_from_above=0.3,
            background="backdrop",
        ),
        printers=(
            Printer(
                name="photo-inkjet",
                dot_pitch=0.95,  # 1200 dpi dither seen from arm's length
                gamut=0.85,  # photo inks: wide gamut
                black=0.06,
                paper=(0.95, 0.95, 0.94),  # bright white photo paper
                grain=0.03,
                gloss=0.35,  # glossy coating: a bright specular band
                bleed=0.2,  # inkjet droplets spread a little
                picture_blur=0.0,  # printed from a sharp studio photo
            ),
            Printer(
                name="colour-laser",
                dot_pitch=1.30,  # coarser toner screen
                gamut=0.70,  # toner: flatter colours
                black=0.10,
                paper=(0.93, 0.94, 0.95),  # bluish optical brighteners of office paper
                grain=0.05,
                gloss=0.12,
                bleed=0.10,  # toner dots stay crisp
                picture_blur=0.2,
            ),
        ),
        screens=(
            Screen(
                name="tablet-lcd",
                pixel_pitch=1.05,  # RGB stripes close to the sensor grid: strong moire
                gamma=2.2,
                tint=(0.99, 1.0, 1.02),  # slightly cold LED backlight
                brightness=1.0,
                fill=0.80,  # share of a pixel that emits
                glare=0.15,
                black=0.03,  # LCD backlight bleed
                picture_blur=0.0,  # replays a sharp studio recording
            ),
            LAPTOP_LCD,
        ),
        masks=(
            MaskKind(name="paper-mask", gamut=0.75, texture=0.05, relief=0.2, rim=0.45, gloss=0.1),
        ),
        edge_prob=0.35,  # instruments held at a distance: borders often in view
    ),
    # A desk webcam: soft, noisy, warm indoor light. Fine texture is lost in its blur.
    "office": Domain(
        name="office",
        summary="desk webcam: low resolution, blur, noise, warm tungsten light, cluttered room",
        camera=Camera(
            name="webcam-720p",
            sensor_scale=0.7,  # the face covers few pixels of a 720p frame: upsampled crop
            blur=0.9,  # cheap plastic fixed-focus lens
            read_noise=0.010,  # tiny pixels, high gain in dim light
            shot_noise=0.015,
            wb_bias=(1.10, 1.0, 0.84),  # AWB under-corrects tungsten: warm cast
            awb=0.5,
            saturation=0.9,  # cheap colour filters: desaturated
            exposure=0.18,
            contrast=0.95,
            sharpen=0.3,
            vignetting=0.25,  # wide-angle small lens
            jpeg_quality=75,  # video-call compression
        ),
        place=Place(
            light_rgb=(1.0, 0.82, 0.60),  # tungsten desk lamps and ceiling lights
            light_jitter=0.06,  # mixed with window light on some days
            light_level=(0.35, 0.75),  # dim offices
            key=0.35,
            key_from_above=0.5,
            background="office",
        ),
        printers=(
            Printer(
                name="office-laser",
                dot_pitch=1.45,
                gamut=0.62,
                black=0.12,
                paper=(0.92, 0.93, 0.95),
                grain=0.05,
                gloss=0.10,
                bleed=0.10,
                picture_blur=0.4,  # a photo taken from a social-media profile
            ),
            Printer(
                name="desk-inkjet",
                dot_pitch=1.15,
                gamut=0.72,
                black=0.09,
                paper=(0.94, 0.93, 0.90),  # cheap yellowish paper
                grain=0.06,
                gloss=0.05,  # plain paper is matte
                bleed=0.40,
                picture_blur=0.4,
            ),
        ),
        screens=(
            LAPTOP_LCD,
            Screen(
                name="monitor-lcd",
                pixel_pitch=1.80,  # large desktop monitor: coarse pixels
                gamma=2.2,
                tint=(0.98, 1.0, 1.03),
                brightness=1.0,
                fill=0.75,
                glare=0.08,  # matte anti-glare coating
                black=0.05,
                picture_blur=0.3,
            ),
        ),
        masks=(
            MaskKind(name="paper-mask", gamut=0.70, texture=0.06, relief=0.2, rim=0.45, gloss=0.05),
        ),
        edge_prob=0.4,
    ),
    # A fixed access-control terminal: cold fluorescent light from above, strong vignetting,
    # and a different fleet of printers (continuous-tone dye-sub, coarse laser) and screens.
    "kiosk": Domain(
        name="kiosk",
        summary="fixed terminal: strong vignetting, cold overhead fluorescent light, tiled wall",
        camera=Camera(
            name="kiosk-module",
            sensor_scale=1.0,
            blur=0.6,
            read_noise=0.006,
            shot_noise=0.010,
            wb_bias=(0.88, 1.0, 1.14),  # AWB tuned for daylight: fluorescent tubes look cold
            awb=0.4,
            saturation=0.85,
            exposure=0.19,
            contrast=1.1,
            sharpen=0.2,
            vignetting=0.55,  # wide lens in a recessed housing
            jpeg_quality=85,
        ),
        place=Place(
            light_rgb=(0.86, 1.0, 0.97),  # fluorescent tubes: green-blue spectrum
            light_jitter=0.04,
            light_level=(0.55, 0.85),
            key=0.30,
            key_from_above=0.9,  # ceiling tubes: light straight from above
            background="kiosk",
        ),
        printers=(
            Printer(
                name="dye-sub",
                dot_pitch=0.80,
                gamut=0.90,
                black=0.05,
                paper=(0.96, 0.96, 0.95),
                grain=0.02,
                gloss=0.30,
                bleed=0.90,  # dye sublimation is continuous tone: almost no dots
                picture_blur=0.3,
            ),
            Printer(
                name="mono-laser-cmyk",
                dot_pitch=1.75,  # coarse, crisp toner dots
                gamut=0.55,
                black=0.14,
                paper=(0.93, 0.93, 0.93),
                grain=0.06,
                gloss=0.08,
                bleed=0.05,
                picture_blur=0.3,
            ),
        ),
        screens=(
            Screen(
                name="monitor-ips",
                pixel_pitch=1.90,
                gamma=2.2,
                tint=(0.95, 1.0, 1.06),
                brightness=1.1,
                fill=0.80,
                glare=0.20,
                black=0.06,
                picture_blur=0.2,
            ),
            Screen(
                name="e-reader-lcd",
                pixel_pitch=1.25,
                gamma=2.6,  # high-contrast reading mode
                tint=(1.0, 0.98, 0.94),  # warm reading light
                brightness=0.8,
                fill=0.65,
                glare=0.12,
                black=0.08,
                picture_blur=0.2,
            ),
        ),
        masks=(
            MaskKind(name="resin-mask", gamut=0.80, texture=0.03, relief=0.8, rim=0.35, gloss=0.25),
        ),
        edge_prob=0.5,  # the terminal sees the whole hand-held instrument
    ),
    # The application-specific target: a phone app's front camera. Its JPEG and noise bury
    # fine textures; its attacks come from phones: continuous-tone photo prints and OLED screens
    # too fine to alias, replaying low-quality recordings. So the phone's spoof cues are coarse,
    # not fine: the soft picture of re-shot media, gloss and glare on photo paper and cover
    # glass, the shiny seam of a latex mask. They survive this camera (a CNN trained on the
    # phone's own labels finds them), but they are not the cues a studio-trained teacher knows.
    "phone": Domain(
        name="phone",
        summary="phone app: small noisy sensor, strong JPEG, over-exposure and hard sharpening",
        camera=Camera(
            name="phone-front",
            sensor_scale=1.25,
            blur=0.5,
            read_noise=0.010,  # small sensor: noisy, especially indoors
            shot_noise=0.015,
            wb_bias=(1.04, 1.0, 0.96),
            awb=0.8,  # aggressive automatic white balance
            saturation=1.25,  # punchy ISP colours
            exposure=0.30,  # exposes for faces: bright, highlights clip
            contrast=1.35,  # high-contrast tone curve
            sharpen=0.7,  # strong sharpening: halos and amplified noise
            vignetting=0.15,
            jpeg_quality=30,  # the app uploads heavily compressed frames
        ),
        place=Place(
            light_rgb=(1.0, 0.96, 0.92),  # mixed daylight
            light_jitter=0.10,  # anywhere: shade, sun, shops
            light_level=(0.45, 1.6),  # indoors to outdoors
            key=0.6,  # hard window or sun light
            key_from_above=0.4,
            background="street",
        ),
        printers=(
            Printer(
                name="pocket-printer",
                dot_pitch=1.60,
                gamut=0.95,
                black=0.04,
                paper=(0.96, 0.92, 0.86),  # zero-ink paper: warm, mottled
                grain=0.12,  # zero-ink paper is mottled
                gloss=0.60,  # glossy sticker paper: a bright specular band at selfie distance
                bleed=0.85,  # dye crystals: nearly continuous tone
                picture_blur=1.4,  # a 314 dpi print of a compressed social-media photo
            ),
            Printer(
                name="minilab-photo",
                dot_pitch=1.00,
                gamut=0.95,
                black=0.03,
                paper=(0.97, 0.96, 0.95),
                grain=0.02,
                gloss=0.70,  # glossy photo paper
                bleed=1.0,  # silver-halide print: continuous tone
                picture_blur=1.2,  # enlarged from a phone photo
            ),
        ),
        screens=(
            Screen(
                name="oled-phone",
                pixel_pitch=0.30,  # 450 ppi: far finer than the camera resolves, no moire
                gamma=2.0,
                tint=(1.04, 0.96, 1.06),  # OLED white point
                brightness=1.3,
                fill=0.55,
                glare=0.30,  # bare cover glass held close: it mirrors the window or the sky
                black=0.0,  # OLED blacks emit nothing
                picture_blur=1.4,  # replays a compressed 480p video-call recording
            ),
            Screen(
                name="oled-tablet",
                pixel_pitch=0.40,
                gamma=2.1,
                tint=(1.05, 0.97, 1.02),
                brightness=1.2,
                fill=0.60,
                glare=0.25,  # glossy glass
                black=0.0,
                picture_blur=1.3,  # a downloaded clip, upscaled to the tablet's panel
            ),
        ),
        masks=(
            # Latex shines where skin is matte, its paint is flatter than skin and its cut edge
            # lifts off the face in a dark seam.
            MaskKind(name="latex-mask", gamut=0.70, texture=0.10, relief=0.9, rim=0.75, gloss=1.0),
        ),
        edge_prob=0.1,  # selfie distance: the instrument fills the view
    ),
}

DOMAIN_NAMES: tuple[str, ...] = tuple(DOMAINS)
ATTACKS: tuple[str, ...] = ("print", "replay", "mask")


def get_domain(name: str) -> Domain:
    """The domain called ``name`` (a readable error for an unknown one)."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise FascoreError(
            f"unknown SynthFAS domain {name!r}; choose among {', '.join(DOMAIN_NAMES)}"
        ) from None
