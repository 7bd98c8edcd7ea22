"""Names derived from user text: folder and file names that are safe everywhere."""

from __future__ import annotations

import re


def slugify(text: str, *, limit: int, fallback: str) -> str:
    """``text`` as lower-case ASCII words joined by '-', at most ``limit`` characters.

    Args:
        text: any text (a prompt, a file stem).
        limit: the longest result.
        fallback: returned when nothing usable is left (no letters or digits).

    Examples:
        >>> slugify("Sunlit marble counter, morning light", limit=20, fallback="scene")
        'sunlit-marble-counte'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].strip("-") or fallback
