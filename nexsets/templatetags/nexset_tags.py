from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def as_json(value: Any) -> str:
    """Render a value as compact JSON text; autoescaping still applies."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
