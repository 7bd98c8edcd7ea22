"""Vision-LLM analysis through any OpenAI-compatible chat-completions endpoint ("openai-vision").

The cut-out is flattened on white, downscaled to at most ``llm_image_side`` px and sent as a
PNG data URL with the file name and prompts as hints. The answer is requested as strict JSON
(``response_format`` json_schema, see :func:`answer_schema`), validated with pydantic and then
clamped (:func:`to_analysis`):

- ``width_cm``/``height_cm`` to [0.5, 300] cm: from a ring to a floor lamp; outside that it is
  no tabletop product and the number is a misreading;
- ``size_fraction``: the heuristic's aspect rule (width within ``max_width_fraction``), times
  ``size_scale``, clamped to the heuristic's [0.12, 0.75];
- ``confidence`` to [0, 1]; ``name`` and ``placement`` whitespace-collapsed and cut to 80/120
  characters; a ``category`` outside the heuristic's size table is matched by keyword, else
  ``"product"``.

Errors: timeouts, connection failures, HTTP 408/409/429 and 5xx raise
:class:`TransientBackendError` (the orchestrator retries, then falls back); HTTP 401/403 raise
:class:`BackendUnavailable`; other HTTP errors, refusals, malformed JSON and answers missing
fields or with wrong types raise :class:`StageFailed` (the heuristic takes over at once).
Retries: the client is built with ``max_retries=llm_max_retries`` (default 0), so retrying is the
orchestrator's (Prefect's delays from ``RetrySettings``), not multiplied by a second loop.
"""

from __future__ import annotations

import base64
import io
import json
import os
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from placewright.analyze import Analysis, Analyzer
from placewright.errors import BackendUnavailable, StageFailed, TransientBackendError
from placewright.settings import AnalyzeSettings

CM_RANGE = (0.5, 300.0)
NAME_CHARS, PLACEMENT_CHARS = 80, 120
SYSTEM_PROMPT = (
    "You analyse product photos for advertising composites. The image shows one product cut out "
    "on white. Answer with JSON only, following the schema."
)
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_Number = Annotated[float, Field(allow_inf_nan=False)]


class LLMAnswer(BaseModel):
    """The model's answer as it arrives (types checked, ranges not yet clamped)."""

    model_config = ConfigDict(extra="ignore")
    name: _Text
    category: _Text
    width_cm: _Number
    height_cm: _Number
    size_fraction: _Number
    placement: str
    confidence: _Number


def answer_schema(categories: list[str]) -> dict[str, Any]:
    """The ``response_format`` asking for an :class:`LLMAnswer` (strict JSON schema)."""
    number = {"type": "number"}
    properties = {
        "name": {"type": "string", "description": "short product name, e.g. 'olive oil bottle'"},
        "category": {"type": "string", "enum": categories},
        "width_cm": {**number, "description": "real-world width of the product as shown, in cm"},
        "height_cm": {**number, "description": "real-world height of the product as shown, in cm"},
        "size_fraction": {**number, "description": "recommended product height / image height (0.12-0.75)"},
        "placement": {"type": "string", "description": "how it should stand, e.g. 'upright, label to camera'"},
        "confidence": {**number, "description": "confidence in this answer, 0-1"},
    }
    schema = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "product_analysis", "strict": True, "schema": schema}}


def image_data_url(cutout: np.ndarray, max_side: int) -> str:
    """(H, W, 3|4) uint8 -> ``data:image/png;base64,...`` flattened on white, long side <= ``max_side``."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(cutout))
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # Pillow resamples RGBA premultiplied
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_analysis(answer: LLMAnswer, aspect: float, options: AnalyzeSettings) -> Analysis:
    """Clamp a validated answer into an :class:`Analysis` (ranges in the module docstring)."""
    from placewright.analyze.heuristic import _WORD, HEIGHT_FRACTION, MAX_FRACTION, MIN_FRACTION, find_category

    category = answer.category.lower()
    if category not in HEIGHT_FRACTION:
        category = find_category(_WORD.findall(category)) or "product"
    fraction = answer.size_fraction
    if aspect > 0 and fraction / aspect > options.max_width_fraction:
        fraction = options.max_width_fraction * aspect
    fraction = min(max(fraction * options.size_scale, MIN_FRACTION), MAX_FRACTION)

    def cm(value: float) -> float:
        return float(min(max(value, CM_RANGE[0]), CM_RANGE[1]))

    placement = " ".join(answer.placement.split())[:PLACEMENT_CHARS] or None
    return Analysis(
        name=" ".join(answer.name.split())[:NAME_CHARS],
        category=category,
        size_fraction=float(fraction),
        aspect=aspect,
        width_cm=cm(answer.width_cm),
        height_cm=cm(answer.height_cm),
        placement=placement,
        confidence=float(min(max(answer.confidence, 0.0), 1.0)),
    )


def parse_answer(content: str | None) -> LLMAnswer:
    """The message content as a validated :class:`LLMAnswer`; :class:`StageFailed` when it is not one."""
    if not content:
        raise StageFailed("the model gave an empty answer", stage="analyze")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise StageFailed(f"malformed JSON answer ({exc.msg} at char {exc.pos})", stage="analyze") from exc
    try:
        return LLMAnswer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:3])
        raise StageFailed(f"answer does not match the schema ({problems})", stage="analyze") from exc


class OpenAIVisionAnalyzer(Analyzer):
    """Asks an OpenAI-compatible vision model what the product is, its real size and placement."""

    name = "openai-vision"
    version = "1"
    requires = ("openai",)

    @classmethod
    def setup_problem(cls, options: AnalyzeSettings) -> str | None:
        key = options.llm_api_key
        # The core reads no settings from the environment; OPENAI_API_KEY is the openai client's own
        # variable, which it reads itself when no key is configured: checking it says whether it will work.
        if (key is None or not key.get_secret_value()) and not os.environ.get("OPENAI_API_KEY"):
            return "no API key: set analyze.llm_api_key or OPENAI_API_KEY (any placeholder for a keyless server)"
        return None

    @classmethod
    def source(cls, options: AnalyzeSettings) -> str:
        """Where requests go and where the key comes from (never the key itself), for ``placewright models``."""
        url = options.llm_base_url or "OPENAI_BASE_URL, else api.openai.com"
        key = "analyze.llm_api_key" if options.llm_api_key is not None else "OPENAI_API_KEY"
        return f"{options.llm_model} at {url} (key: {key})"

    def __call__(self, cutout: np.ndarray, filename: str, prompts: list[str]) -> Analysis:
        from placewright.analyze.heuristic import HEIGHT_FRACTION, cutout_aspect

        aspect = float(cutout_aspect(cutout))
        question = "What is this product, how large is it really, how should it stand?"
        hints = f"File name: {filename!r}. Scene prompts: {json.dumps(prompts)}."
        messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"{question} {hints}"},
                    {"type": "image_url", "image_url": {"url": image_data_url(cutout, self.options.llm_image_side)}},
                ],
            },
        ]
        response = self._complete(messages, answer_schema(list(HEIGHT_FRACTION)))
        message = response.choices[0].message if response.choices else None
        if message is not None and getattr(message, "refusal", None):
            raise StageFailed(f"the model refused: {message.refusal}", stage="analyze")
        return to_analysis(parse_answer(message.content if message else None), aspect, self.options)

    def _complete(self, messages: list[dict[str, Any]], response_format: dict[str, Any]) -> Any:
        """One chat completion; openai errors mapped onto the pipeline's (see the module docstring)."""
        import openai

        options = self.options
        kwargs: dict[str, Any] = {"timeout": options.llm_timeout_seconds, "max_retries": options.llm_max_retries}
        if options.llm_api_key is not None and options.llm_api_key.get_secret_value():
            kwargs["api_key"] = options.llm_api_key.get_secret_value()
        if options.llm_base_url:
            kwargs["base_url"] = options.llm_base_url
        try:
            client = openai.OpenAI(**kwargs)
        except openai.OpenAIError as exc:
            raise BackendUnavailable(f"cannot configure the client: {exc}", stage="analyze") from exc
        try:
            return client.chat.completions.create(
                model=options.llm_model, messages=messages, response_format=response_format
            )
        except openai.APITimeoutError as exc:
            raise TransientBackendError(f"timed out after {options.llm_timeout_seconds:g} s", stage="analyze") from exc
        except openai.APIConnectionError as exc:
            raise TransientBackendError(f"connection failed: {exc}", stage="analyze") from exc
        except openai.APIStatusError as exc:
            status, detail = exc.status_code, str(exc.message)[:200]
            if status in (408, 409, 429) or status >= 500:
                raise TransientBackendError(f"HTTP {status}: {detail}", stage="analyze") from exc
            if status in (401, 403):
                raise BackendUnavailable(f"HTTP {status}, credentials rejected: {detail}", stage="analyze") from exc
            raise StageFailed(f"HTTP {status}: {detail}", stage="analyze") from exc
        except openai.OpenAIError as exc:
            raise StageFailed(f"unusable response: {exc}", stage="analyze") from exc
        finally:
            client.close()
