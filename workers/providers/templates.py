"""Prompt-enhancement templates and the options that steer them.

Pure Python on purpose (no Django): the Gemini text provider, the offline provider and the
request serializers of every job endpoint read the same tables. It sits with the providers,
below both feature apps, because it is what the providers are told (system instructions,
offline rules) and both image generation and /api/enhance accept its vocabulary.

Each template carries two things:

* ``instructions`` - the system instruction Gemini gets when it rewrites a prompt;
* rule fragments (``style``, ``keywords``, ``details``) - what the offline provider appends
  deterministically, so an offline enhancement still visibly differs per template.

Option keys are snake_case (the serializers translate from the camelCase wire names):
``image_style`` (a template name), ``aspect_ratio``, ``mood``, ``lighting``,
``camera_angle``, ``output_format``, ``negative_prompts`` (list of str). All are optional.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Template:
    name: str
    description: str  # one line, as in the public API reference
    instructions: str  # system instruction for Gemini
    style: str  # offline rule: the template's style sentence (detailed output)
    keywords: str  # offline rule: a short style phrase (concise output)
    details: str  # offline rule: the fine-detail specification (detailed output only)


_TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            name="photorealistic",
            description=(
                "Photography-focused with camera angles, lens types, lighting, and fine details"
            ),
            instructions=(
                "You are an expert photography prompt engineer. Rewrite the user's image prompt "
                "as a photorealistic photograph description. Specify the camera angle and shot "
                "type, the lens (focal length, aperture) and camera body where it helps, the "
                "lighting setup and time of day, and the fine details a photographer would "
                "notice: textures, materials, depth of field, reflections. Keep the user's "
                "subject and every concrete detail they gave."
            ),
            style=(
                "Photorealistic photograph, shot on a full-frame camera with a 50mm prime lens "
                "at f/2.8, natural lighting, true-to-life colours"
            ),
            keywords="photorealistic photo, 50mm lens",
            details=(
                "Fine details: crisp focus on textures and materials, shallow depth of field, "
                "subtle reflections, high dynamic range"
            ),
        ),
        Template(
            name="illustration",
            description=(
                "Art style specifications with line work, color palette, and shading techniques"
            ),
            instructions=(
                "You are an expert illustration prompt engineer. Rewrite the user's image prompt "
                "as an illustration brief. Name the art style (for example digital painting, "
                "ink drawing, watercolour, vector art), describe the line work, the colour "
                "palette and the shading technique, and how the subject is stylised. Keep the "
                "user's subject and every concrete detail they gave."
            ),
            style=(
                "Digital illustration with clean confident line work, a harmonious limited "
                "colour palette and soft cel shading"
            ),
            keywords="digital illustration, clean line art",
            details=(
                "Details: consistent line weight, deliberate colour accents, layered shading "
                "with gentle highlights"
            ),
        ),
        Template(
            name="minimalist",
            description="Emphasis on negative space, simple composition, and subtle elements",
            instructions=(
                "You are an expert minimalist-design prompt engineer. Rewrite the user's image "
                "prompt as a minimalist composition: one clear focal subject, generous negative "
                "space, a simple uncluttered layout, a restrained palette and only subtle "
                "secondary elements. Keep the user's subject and every concrete detail they gave, "
                "and remove nothing essential."
            ),
            style=(
                "Minimalist composition with generous negative space, a single clear focal point "
                "and a restrained palette"
            ),
            keywords="minimalist, negative space",
            details=(
                "Details: uncluttered background, subtle secondary elements, precise placement, "
                "soft tonal transitions"
            ),
        ),
        Template(
            name="sticker",
            description="Bold outlines, kawaii style, clean design, transparent background style",
            instructions=(
                "You are an expert sticker-design prompt engineer. Rewrite the user's image "
                "prompt as a die-cut sticker design: bold clean outlines, a cute kawaii style, "
                "flat vibrant colours, simple shapes, and an isolated subject on a plain "
                "transparent-style background with a white border. Keep the user's subject and "
                "every concrete detail they gave."
            ),
            style=(
                "Kawaii sticker design with bold black outlines, flat vibrant colours and a "
                "clean die-cut white border"
            ),
            keywords="kawaii sticker, bold outlines",
            details=(
                "Details: isolated subject on a transparent background, simple rounded shapes, "
                "no background clutter"
            ),
        ),
        Template(
            name="product",
            description=(
                "Studio lighting setups, commercial photography terms, surfaces, and angles"
            ),
            instructions=(
                "You are an expert commercial product-photography prompt engineer. Rewrite the "
                "user's image prompt as a product shot: the studio lighting setup (softbox, key "
                "and rim lights, light tent), the surface or backdrop the product stands on, "
                "the camera angle, and commercial photography terms such as hero shot or "
                "packshot. Keep the product and every concrete detail the user gave."
            ),
            style=(
                "Commercial studio product photograph, three-point softbox lighting with a "
                "subtle rim light, hero shot on a seamless backdrop"
            ),
            keywords="studio product shot, softbox lighting",
            details=(
                "Details: polished reflective surface, accurate material rendering, "
                "sharp edges, soft controlled shadows"
            ),
        ),
        Template(
            name="comic",
            description="Panel style, art technique, mood, and dialogue/caption integration",
            instructions=(
                "You are an expert comic-art prompt engineer. Rewrite the user's image prompt "
                "as a comic panel: the panel layout and framing, the art technique (inking, "
                "halftone, colouring), the mood, and where speech bubbles or caption boxes sit "
                "if the scene calls for dialogue. Keep the user's subject, any dialogue they "
                "wrote verbatim, and every concrete detail they gave."
            ),
            style=(
                "Comic book panel with bold inking, halftone shading and dynamic framing"
            ),
            keywords="comic panel, bold inks",
            details=(
                "Details: expressive poses, space reserved for a caption box and speech "
                "bubbles, saturated flat colours"
            ),
        ),
        Template(
            name="general",
            description="Balanced approach with clear descriptions and artistic detail",
            instructions=(
                "You are an expert image prompt engineer. Rewrite the user's image prompt as a "
                "clear, balanced description: the subject, the setting, the composition, the "
                "colours and light, and a touch of artistic detail, without forcing a "
                "particular medium. Keep the user's subject and every concrete detail they gave."
            ),
            style="Clear, well-composed image with balanced colours and artistic detail",
            keywords="balanced composition",
            details="Details: clearly defined subject, coherent setting, pleasing colour harmony",
        ),
    )
}

TEMPLATES: tuple[str, ...] = tuple(_TEMPLATES)
DEFAULT_TEMPLATE = "photorealistic"

OUTPUT_FORMATS: tuple[str, ...] = ("detailed", "concise")
DEFAULT_OUTPUT_FORMAT = "detailed"

# The image model's own ratios (also what /api/text-to-image accepts).
IMAGE_ASPECT_RATIOS: tuple[str, ...] = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
)
# /api/enhance also takes words, as in the original API ("aspectRatio": "landscape").
ENHANCE_ASPECT_RATIOS: tuple[str, ...] = (
    "square", "portrait", "landscape", "wide", "tall",
) + IMAGE_ASPECT_RATIOS

# One composition hint per shape; every allowed ratio maps to one of these.
_COMPOSITION_HINTS: dict[str, str] = {
    "square": "centered, balanced composition for a square frame",
    "portrait": "vertical portrait composition with the subject filling the frame height",
    "tall": "tall vertical composition leading the eye from top to bottom",
    "landscape": "horizontal landscape composition following the rule of thirds",
    "wide": "wide panoramic composition with a sweeping horizontal layout",
}
_RATIO_SHAPES: dict[str, str] = {
    "1:1": "square",
    "2:3": "portrait", "3:4": "portrait", "4:5": "portrait",
    "9:16": "tall",
    "3:2": "landscape", "4:3": "landscape", "5:4": "landscape",
    "16:9": "wide", "21:9": "wide",
}

OPTION_KEYS: tuple[str, ...] = (
    "image_style", "aspect_ratio", "mood", "lighting", "camera_angle",
    "output_format", "negative_prompts",
)


def get_template(name: str) -> Template:
    """The template called ``name``; ValueError listing the allowed names otherwise."""
    try:
        return _TEMPLATES[name]
    except KeyError:
        raise ValueError(
            f"Unknown template {name!r}; allowed: {', '.join(TEMPLATES)}"
        ) from None


def composition_hint(aspect_ratio: str) -> str:
    """Composition advice for an enhance aspect ratio (word or "w:h"), e.g. "16:9"."""
    if aspect_ratio not in ENHANCE_ASPECT_RATIOS:
        raise ValueError(
            f"Unknown aspect ratio {aspect_ratio!r}; allowed: {', '.join(ENHANCE_ASPECT_RATIOS)}"
        )
    shape = _RATIO_SHAPES.get(aspect_ratio, aspect_ratio)
    hint = _COMPOSITION_HINTS[shape]
    return f"{hint} ({aspect_ratio})" if aspect_ratio in _RATIO_SHAPES else hint


def resolve_template(template: str, options: dict[str, Any]) -> Template:
    """The template to apply: ``options["image_style"]`` wins over ``template``.

    /api/enhance names the template ``imageStyle`` while the generate endpoints call it
    ``template``; when a caller passes both, the more specific option is the user's choice.
    """
    return get_template(options.get("image_style") or template or DEFAULT_TEMPLATE)


def validate_options(options: dict[str, Any]) -> dict[str, Any]:
    """Check option keys and values; return a copy without empty values.

    Raises ValueError naming the offending key, so callers that skipped the serializer
    (tasks, tests) still fail loudly instead of silently ignoring a typo.
    """
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ValueError(
            f"Unknown option(s) {', '.join(unknown)}; allowed: {', '.join(OPTION_KEYS)}"
        )
    clean: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or value == "" or value == []:
            continue
        if key == "negative_prompts":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError("negative_prompts must be a list of strings")
            items = [v.strip() for v in value if v.strip()]
            if items:
                clean[key] = items
            continue
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a string")
        value = value.strip()
        if not value:
            continue
        if key == "image_style":
            get_template(value)
        elif key == "aspect_ratio" and value not in ENHANCE_ASPECT_RATIOS:
            raise ValueError(
                f"Unknown aspect_ratio {value!r}; allowed: {', '.join(ENHANCE_ASPECT_RATIOS)}"
            )
        elif key == "output_format" and value not in OUTPUT_FORMATS:
            raise ValueError(
                f"Unknown output_format {value!r}; allowed: {', '.join(OUTPUT_FORMATS)}"
            )
        clean[key] = value
    return clean


def build_gemini_instruction(template: str, options: dict[str, Any]) -> str:
    """The full system instruction Gemini gets for one enhancement request.

    Template instructions, then one line per given option, then the JSON contract the
    Gemini text provider parses (enhancedPrompt, detectedLanguage, appliedTemplate,
    enhancements).
    """
    opts = validate_options(options)
    tpl = resolve_template(template, opts)
    lines = [tpl.instructions, ""]
    lines.append(
        "Write the enhanced prompt in the same language as the user's prompt; do not "
        "translate it."
    )
    requested: list[str] = []
    if "aspect_ratio" in opts:
        ratio = opts["aspect_ratio"]
        requested.append(f"- Aspect ratio: {ratio}; use a {composition_hint(ratio)}.")
    if "mood" in opts:
        requested.append(f"- Mood: {opts['mood']}.")
    if "lighting" in opts:
        requested.append(f"- Lighting: {opts['lighting']}.")
    if "camera_angle" in opts:
        requested.append(f"- Camera angle: {opts['camera_angle']}.")
    fmt = opts.get("output_format", DEFAULT_OUTPUT_FORMAT)
    if fmt == "concise":
        requested.append(
            "- Output format: concise; one short sentence of comma-separated key phrases."
        )
    else:
        requested.append("- Output format: detailed; a rich paragraph specifying fine details.")
    if "negative_prompts" in opts:
        avoid = ", ".join(opts["negative_prompts"])
        requested.append(f'- Things to avoid: {avoid}; end the prompt with "Avoid: {avoid}".')
    lines += ["", "Apply these requested options:", *requested, ""]
    lines.append(
        "Return only a JSON object with these keys: "
        '"enhancedPrompt" (string, the rewritten prompt), '
        '"detectedLanguage" (the ISO 639-1 code of the user\'s prompt, e.g. "en"), '
        f'"appliedTemplate" (the string "{tpl.name}"), '
        '"enhancements" (list of snake_case tags naming what you changed, e.g. '
        '"lighting_enhancement", "mood_enhancement", "camera_angle", '
        '"composition_improvement", "negative_prompts", "detail_specification").'
    )
    return "\n".join(lines)
