"""The offline providers: template-rule enhancement and the labelled preview PNG.

Plain pytest, no Django: the providers and templates are pure Python.
"""
from __future__ import annotations

import io

import pytest
from PIL import Image

from workers.providers.templates import (
    DEFAULT_TEMPLATE,
    ENHANCE_ASPECT_RATIOS,
    IMAGE_ASPECT_RATIOS,
    OUTPUT_FORMATS,
    TEMPLATES,
    build_gemini_instruction,
    get_template,
)
from workers.providers.base import ReferenceImage
from workers.providers.offline import (
    OFFLINE_LABEL,
    OfflineImageProvider,
    OfflineTextProvider,
)

PROMPT = "A mountain landscape"


def enhance(prompt: str = PROMPT, template: str = DEFAULT_TEMPLATE, **options):
    return OfflineTextProvider().enhance(prompt=prompt, template=template, options=options)


def generate(prompt: str = PROMPT, aspect_ratio: str = "1:1", refs: int = 0):
    images = [ReferenceImage(data=b"ref", mime_type="image/png")] * refs
    return OfflineImageProvider().generate(
        prompt=prompt, reference_images=images, aspect_ratio=aspect_ratio
    )


# --- templates -------------------------------------------------------------------------


def test_there_are_seven_templates_and_photorealistic_is_the_default():
    assert TEMPLATES == (
        "photorealistic", "illustration", "minimalist", "sticker", "product", "comic", "general",
    )
    assert DEFAULT_TEMPLATE == "photorealistic"
    assert OUTPUT_FORMATS == ("detailed", "concise")
    assert ENHANCE_ASPECT_RATIOS[:5] == ("square", "portrait", "landscape", "wide", "tall")
    assert set(IMAGE_ASPECT_RATIOS) <= set(ENHANCE_ASPECT_RATIOS)


def test_unknown_template_is_rejected_with_the_allowed_names():
    with pytest.raises(ValueError, match="photorealistic"):
        get_template("scenic_landscape")
    with pytest.raises(ValueError):
        enhance(template="scenic_landscape")


def test_every_template_rewrites_the_prompt_differently():
    results = {name: enhance(template=name) for name in TEMPLATES}
    prompts = [r.enhanced_prompt for r in results.values()]
    assert len(set(prompts)) == len(TEMPLATES)
    for name, result in results.items():
        assert result.enhanced_prompt.startswith(PROMPT)
        assert result.enhanced_prompt != PROMPT
        assert get_template(name).style in result.enhanced_prompt
        assert result.applied_template == name
        assert f"template_{name}" in result.enhancements
        assert result.model == "offline-template-rules"


def test_image_style_option_chooses_the_template():
    result = enhance(template="photorealistic", image_style="sticker")
    assert result.applied_template == "sticker"
    assert "template_sticker" in result.enhancements
    assert get_template("sticker").style in result.enhanced_prompt


# --- options ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected_text", "tag"),
    [
        ("mood", "serene and peaceful", "Mood: serene and peaceful", "mood_enhancement"),
        ("lighting", "golden hour", "Lighting: golden hour", "lighting_enhancement"),
        ("camera_angle", "wide shot", "Camera angle: wide shot", "camera_angle"),
        ("aspect_ratio", "landscape", "landscape composition", "composition_improvement"),
        (
            "negative_prompts", ["blurry", "low quality"],
            "Avoid: blurry, low quality", "negative_prompts",
        ),
    ],
)
def test_each_option_shows_up_in_the_prompt_and_in_the_enhancements(
    key, value, expected_text, tag
):
    without = enhance()
    result = enhance(**{key: value})
    assert expected_text in result.enhanced_prompt
    assert expected_text not in without.enhanced_prompt
    assert tag in result.enhancements
    assert tag not in without.enhancements


@pytest.mark.parametrize("ratio", ENHANCE_ASPECT_RATIOS)
def test_every_enhance_aspect_ratio_adds_a_composition_hint(ratio):
    result = enhance(aspect_ratio=ratio)
    assert "Composition: " in result.enhanced_prompt
    assert "composition_improvement" in result.enhancements


def test_wide_and_tall_ratios_get_different_composition_hints():
    wide = enhance(aspect_ratio="21:9").enhanced_prompt
    assert wide != enhance(aspect_ratio="9:16").enhanced_prompt


def test_detailed_output_specifies_details_and_concise_output_is_shorter():
    options = {"mood": "moody", "lighting": "neon", "negative_prompts": ["text"]}
    detailed = enhance(output_format="detailed", **options)
    concise = enhance(output_format="concise", **options)
    assert detailed == enhance(**options)  # detailed is the default
    assert get_template(DEFAULT_TEMPLATE).details in detailed.enhanced_prompt
    assert "detail_specification" in detailed.enhancements
    assert get_template(DEFAULT_TEMPLATE).details not in concise.enhanced_prompt
    assert "detail_specification" not in concise.enhancements
    assert "concise_format" in concise.enhancements
    assert len(concise.enhanced_prompt) < len(detailed.enhanced_prompt)
    for text in ("moody", "neon", "Avoid: text"):
        assert text in concise.enhanced_prompt


@pytest.mark.parametrize(
    "options",
    [
        {"output_format": "long"},
        {"aspect_ratio": "7:3"},
        {"image_style": "oil"},
        {"negative_prompts": "blurry"},
        {"aspectRatio": "1:1"},
    ],
)
def test_invalid_options_are_rejected(options):
    with pytest.raises(ValueError):
        enhance(**options)


def test_enhancement_is_deterministic():
    options = {"mood": "calm", "aspect_ratio": "16:9", "negative_prompts": ["blur"]}
    assert enhance(**options) == enhance(**options)


def test_the_original_prompt_is_kept_untranslated():
    prompt = "Un château médiéval au bord d'un lac au lever du soleil"
    result = enhance(prompt=prompt, template="illustration", mood="mystérieux")
    assert result.enhanced_prompt.startswith(prompt)
    assert "mystérieux" in result.enhanced_prompt


@pytest.mark.parametrize(
    ("prompt", "language"),
    [
        ("A red fox sleeping in the snow under a pine tree at dawn", "en"),
        ("Un renard roux qui dort dans la neige sous un sapin au lever du jour", "fr"),
        ("Ein roter Fuchs, der im Schnee unter einer Tanne in der Morgendämmerung schläft", "de"),
    ],
)
def test_language_is_detected_from_the_original_prompt(prompt, language):
    assert enhance(prompt=prompt).detected_language == language


def test_language_is_undetermined_for_a_digits_only_prompt():
    assert enhance(prompt="12345 678").detected_language == "und"


def test_gemini_instruction_has_template_options_and_json_contract():
    text = build_gemini_instruction(
        "comic",
        {"mood": "tense", "lighting": "neon", "camera_angle": "low angle",
         "aspect_ratio": "16:9", "output_format": "concise", "negative_prompts": ["gore"]},
    )
    assert get_template("comic").instructions in text
    for fragment in ("tense", "neon", "low angle", "16:9", "concise", "gore",
                     "enhancedPrompt", "detectedLanguage", "ISO 639-1", "appliedTemplate",
                     "enhancements"):
        assert fragment in text


# --- images ----------------------------------------------------------------------------

EXPECTED_SIZES = {
    "1:1": (1024, 1024), "2:3": (683, 1024), "3:2": (1024, 683), "3:4": (768, 1024),
    "4:3": (1024, 768), "4:5": (819, 1024), "5:4": (1024, 819), "9:16": (576, 1024),
    "16:9": (1024, 576), "21:9": (1024, 439),
}


@pytest.mark.parametrize("ratio", IMAGE_ASPECT_RATIOS)
def test_offline_image_has_the_requested_aspect_ratio(ratio):
    result = generate(aspect_ratio=ratio)
    image = Image.open(io.BytesIO(result.data))
    assert image.format == "PNG"
    assert image.size == EXPECTED_SIZES[ratio]
    assert result.mime_type == "image/png"


def test_offline_image_says_it_is_an_offline_preview():
    result = generate(prompt="A cat on a windowsill")
    assert result.model == "offline-preview"
    assert result.description == "Offline preview for: A cat on a windowsill"
    assert OFFLINE_LABEL == "OFFLINE PREVIEW — not generated by Gemini"
    # The label is pure white text on a darkened band across the middle.
    image = Image.open(io.BytesIO(result.data)).convert("RGB")
    band = image.crop((0, 400, 1024, 624))
    assert (255, 255, 255) in {color for _, color in band.getcolors(1024 * 224)}


def test_offline_image_is_byte_identical_for_identical_input():
    assert generate(aspect_ratio="16:9", refs=2).data == generate(aspect_ratio="16:9", refs=2).data


def test_offline_image_differs_for_different_prompts_ratios_and_reference_counts():
    base = generate(prompt="A red fox").data
    assert generate(prompt="A blue fox").data != base
    assert generate(prompt="A red fox", aspect_ratio="4:3").data != base
    assert generate(prompt="A red fox", refs=1).data != base


def test_offline_image_rejects_an_unknown_aspect_ratio():
    with pytest.raises(ValueError, match="16:9"):
        generate(aspect_ratio="landscape")


def test_offline_image_follows_the_size_class_and_reports_zero_usage():
    from workers.providers.base import Usage

    for size, long_side in (("1K", 1024), ("2K", 2048), (None, 1024)):
        image = OfflineImageProvider().generate(prompt="A red fox", reference_images=[], aspect_ratio="3:2",
                                                model="gemini-3-pro-image-preview", image_size=size)
        assert Image.open(io.BytesIO(image.data)).size == (long_side, round(long_side * 2 / 3))
        assert image.usage == Usage() and image.usage.as_dict()["totalTokens"] == 0
