"""Reading the destination forms into a `Destination.config` dict.

The configure form is parsed by hand rather than with a Django Form because
its mapping rows depend on the template and the Nexset. Every parse returns
the config exactly as typed plus a dict of errors per field name, so a page
with an error keeps everything else the user entered.
"""

from __future__ import annotations

import json
import zoneinfo
from typing import Any

from django import forms
from django.http import QueryDict

from credentials.models import Credential
from destinations import manual
from destinations.manual import ManualConfigError
from destinations.plan import DeliveryPlan, allowed_hosts
from px import payloads
from px.convert import CUSTOM_TYPES
from px.fields import CUSTOM_PREFIXES, mappable_fields
from px.templates import TEMPLATES

TEMPLATE_CHOICES = [(key, template.label) for key, template in TEMPLATES.items()]
# Value of a mapping row's source pulldown when the row sends a constant.
CONSTANT_SOURCE = "__constant__"
DEFAULT_BATCHING = {
    "enabled": False,
    "algorithm": "fixed",
    "batch_size": manual.DEFAULT_BATCH_SIZE,
    "group_attribute": "",
    "max_bytes": 1_000_000,
}


class DestinationCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    credential = forms.ModelChoiceField(
        queryset=Credential.objects.none(), empty_label=None
    )
    mode = forms.ChoiceField(
        choices=[("template", "Endpoint template"), ("manual", "Manual (Advanced)")],
        initial="template",
        widget=forms.RadioSelect,
    )
    template = forms.ChoiceField(
        choices=TEMPLATE_CHOICES, initial="upsert_user", required=False
    )

    def __init__(self, *args: Any, team: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["credential"].queryset = Credential.objects.filter(team=team)


def initial_config(
    mode: str, template: str, attribute_names: list[str], custom_types: dict[str, str]
) -> dict[str, Any]:
    config: dict[str, Any] = {"response_webhook": False, "skip_unchanged": True}
    if mode == "template":
        config.update(
            mapping=payloads.default_mapping(
                template, attribute_names, list(custom_types)
            ),
            product_key="",
            timezone="UTC",
            send_nulls=False,
            custom_types=custom_types,
        )
    else:
        config.update(
            method="POST",
            content_format="json",
            url="/v1/events/custom",
            headers="",
            excluded=[],
            batching=dict(DEFAULT_BATCHING),
        )
    return config


def mapping_rows(template: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    """List the rows of the mapping table: mapped targets, then the unmapped ones.

    Mapped targets come first and in mapping order, so that the form posts the
    mapping back in the order it was saved in. The order of the mapping is the
    key order of the request body, which the panel shows byte for byte.
    Unmapped standard fields and custom attributes follow in catalogue order.
    """
    object_type = TEMPLATES[template].object_type
    mapping = config.get("mapping") or {}
    custom_types = config.get("custom_types") or {}
    prefix = CUSTOM_PREFIXES[object_type]
    known: dict[str, dict[str, Any]] = {}
    for field in mappable_fields(object_type):
        known[field.path] = {
            "label": field.label,
            "required": field.required,
            "type": field.type,
        }
    for api_name, kind in custom_types.items():
        known.setdefault(
            prefix + api_name,
            {"label": f"Custom: {api_name}", "required": False, "type": kind},
        )
    rows = []
    for path in [*mapping, *(path for path in known if path not in mapping)]:
        row = {
            "target": path,
            **known.get(path, {"label": path, "required": False, "type": ""}),
        }
        source = mapping.get(path) or {}
        row["attribute"] = source.get("attribute", "")
        row["is_constant"] = "constant" in source
        row["constant"] = source.get("constant", "")
        rows.append(row)
    return rows


def parse_config(
    destination: Any, data: QueryDict
) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    """Read the configure form; return mode, template, config and errors."""
    errors: dict[str, str] = {}
    mode = data.get("mode", destination.mode)
    if mode not in ("template", "manual"):
        errors["mode"] = (
            f"Mode {mode!r} is unknown: pick Endpoint template or Advanced (manual)."
        )
        mode = destination.mode
    template = data.get("template", destination.template) or "upsert_user"
    if template not in TEMPLATES:
        known = ", ".join(template.label for template in TEMPLATES.values())
        errors["template"] = f"Endpoint {template!r} is unknown: pick one of {known}."
        template = (
            destination.template if destination.template in TEMPLATES else "upsert_user"
        )
    previous = destination.config or {}
    config: dict[str, Any] = {
        "response_webhook": data.get("response_webhook") == "on",
        "skip_unchanged": data.get("skip_unchanged") == "on",
    }
    if mode == "template":
        _parse_template(data, destination, template, previous, config, errors)
    else:
        _parse_manual(data, destination, config, errors)
    if not errors:
        try:
            DeliveryPlan(mode, template, config, destination.credential.base_url)
        except (ManualConfigError, ValueError) as exc:
            errors["general"] = str(exc)
    return mode, template, config, errors


def _parse_template(
    data: QueryDict,
    destination: Any,
    template: str,
    previous: dict[str, Any],
    config: dict[str, Any],
    errors: dict[str, str],
) -> None:
    config["product_key"] = data.get("product_key", "").strip()
    if not config["product_key"]:
        errors["product_key"] = (
            "The product key is empty: enter the tag key (AP-XXXXXXXXXX-2) of the PX product these records belong to."
        )
    config["timezone"] = data.get("timezone", "UTC").strip() or "UTC"
    try:
        zoneinfo.ZoneInfo(config["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = (
            f"Time zone {config['timezone']!r} is unknown: use an IANA name such as UTC or Europe/Paris."
        )
    config["send_nulls"] = data.get("send_nulls") == "on"
    config["custom_types"] = _parse_custom_types(data.get("custom_types"), previous)
    mapping: dict[str, dict[str, Any]] = {}
    for index in _row_indexes(data):
        target = data.get(f"target_{index}", "").strip()
        source = data.get(f"source_{index}", "")
        constant = data.get(f"constant_{index}", "")
        if not target:
            continue
        # A value typed in the constant box counts as choosing "Constant
        # value…", rather than being dropped without a word.
        if source == CONSTANT_SOURCE or (not source and constant.strip()):
            mapping[target] = {"constant": constant}
        elif source:
            mapping[target] = {"attribute": source}
    new_target = data.get("new_target", "").strip()
    new_source = data.get("new_source", "")
    if new_target and new_source:
        mapping[new_target] = {"attribute": new_source}
    config["mapping"] = mapping
    messages = payloads.validate_mapping(template, mapping)
    messages.extend(_unknown_sources(mapping, destination.nexset.attribute_names))
    if messages:
        errors["mapping"] = ". ".join(message.rstrip(".") for message in messages) + "."


def _parse_custom_types(text: str | None, previous: dict[str, Any]) -> dict[str, str]:
    """Read the custom attribute types the form carries from the last fetch.

    The form keeps them in a hidden field, so types fetched for a template the
    user switched to survive until the save. A missing or malformed value falls
    back to the saved types.
    """
    saved = previous.get("custom_types") or {}
    if text is None:
        return saved
    try:
        value = json.loads(text)
    except ValueError:
        return saved
    if not isinstance(value, dict):
        return saved
    return {
        str(name): kind for name, kind in value.items() if name and kind in CUSTOM_TYPES
    }


def _unknown_sources(
    mapping: dict[str, dict[str, Any]], attribute_names: list[str]
) -> list[str]:
    known = set(attribute_names)
    return [
        f'{target} is mapped to "{source["attribute"]}", which is not an attribute of this Nexset: pick one of its attributes or a constant'
        for target, source in mapping.items()
        if "attribute" in source and source["attribute"] not in known
    ]


def _row_indexes(data: QueryDict) -> list[int]:
    indexes = []
    for key in data:
        if key.startswith("target_"):
            try:
                indexes.append(int(key[len("target_") :]))
            except ValueError:
                continue
    return sorted(indexes)


def _parse_manual(
    data: QueryDict, destination: Any, config: dict[str, Any], errors: dict[str, str]
) -> None:
    config["method"] = data.get("method", "POST")
    if config["method"] not in ("POST", "PUT"):
        errors["method"] = (
            f"Method {config['method']!r} is not supported: use POST or PUT."
        )
    config["content_format"] = data.get("content_format", "json")
    if config["content_format"] not in manual.CONTENT_FORMATS:
        errors["content_format"] = (
            f"Content format {config['content_format']!r} is unknown: pick one from the list."
        )

    config["url"] = data.get("url", "").strip()
    https_hosts, http_hosts = allowed_hosts(destination.credential.base_url)
    attribute_names = destination.nexset.attribute_names
    try:
        manual.resolve_url(
            config["url"],
            destination.credential.base_url,
            allowed_hosts=https_hosts,
            allow_http_hosts=http_hosts,
        )
        manual.validate_url_macros(config["url"], attribute_names)
    except ManualConfigError as exc:
        errors["url"] = str(exc)

    config["headers"] = data.get("headers", "").strip()
    try:
        manual.parse_headers(config["headers"])
    except ManualConfigError as exc:
        errors["headers"] = str(exc)

    config["excluded"] = _parse_exclusions(data, attribute_names, errors)
    config["batching"] = _parse_batching(
        data, config["content_format"], attribute_names, errors
    )


def _parse_exclusions(
    data: QueryDict, attribute_names: list[str], errors: dict[str, str]
) -> list[str]:
    """Read the exclusion chips, plus the one added or removed by this post."""
    excluded = [name for name in data.getlist("excluded") if name]
    added = data.get("exclude_add", "")
    if added and added not in excluded:
        excluded.append(added)
    removed = data.get("exclude_remove", "")
    excluded = [name for name in excluded if name != removed]
    unknown = [name for name in excluded if name not in attribute_names]
    if len(unknown) == 1:
        errors["excluded"] = (
            f'Excluded attribute "{unknown[0]}" is not an attribute of this Nexset: remove its chip.'
        )
    elif unknown:
        listed = ", ".join(f'"{name}"' for name in unknown)
        errors["excluded"] = (
            f"Excluded attributes {listed} are not attributes of this Nexset: remove their chips."
        )
    return excluded


def _parse_batching(
    data: QueryDict,
    content_format: str,
    attribute_names: list[str],
    errors: dict[str, str],
) -> dict[str, Any]:
    """Read the batching settings and check those that batching uses."""
    batching: dict[str, Any] = {
        "enabled": data.get("batching_enabled") == "on",
        "algorithm": data.get("algorithm", "fixed"),
        "batch_size": data.get(
            "batch_size", str(DEFAULT_BATCHING["batch_size"])
        ).strip(),
        "group_attribute": data.get("group_attribute", ""),
        "max_bytes": data.get("max_bytes", str(DEFAULT_BATCHING["max_bytes"])).strip(),
    }
    batching["batch_size"] = _whole_number(batching["batch_size"])
    batching["max_bytes"] = _whole_number(batching["max_bytes"])

    # A setting that is not used and not a number falls back to its default,
    # because the delivery plan reads both numbers whatever the algorithm.
    if not batching["enabled"] and isinstance(batching["batch_size"], str):
        batching["batch_size"] = DEFAULT_BATCHING["batch_size"]
    uses_max_bytes = batching["enabled"] and batching["algorithm"] == "max_bytes"
    if not uses_max_bytes and isinstance(batching["max_bytes"], str):
        batching["max_bytes"] = DEFAULT_BATCHING["max_bytes"]
    if not batching["enabled"]:
        return batching

    if isinstance(batching["batch_size"], str):
        errors["batch_size"] = (
            f"Batch size {batching['batch_size']!r} is not a whole number: enter a number of records"
            f" from {manual.MIN_BATCH_SIZE} to {manual.MAX_BATCH_SIZE}."
        )
    if isinstance(batching["max_bytes"], str):
        errors["max_bytes"] = (
            f"Maximum body size {batching['max_bytes']!r} is not a whole number: enter a number of bytes"
            f" from {manual.MIN_MAX_BYTES} to {manual.MAX_MAX_BYTES}."
        )
    if "batch_size" in errors or "max_bytes" in errors:
        return batching

    try:
        manual.validate_batching(
            batching["algorithm"],
            batching["batch_size"],
            batching["group_attribute"] or None,
            batching["max_bytes"] if batching["algorithm"] == "max_bytes" else None,
            attribute_names,
            content_format=content_format
            if content_format in manual.CONTENT_FORMATS
            else None,
        )
    except ManualConfigError as exc:
        errors["batching"] = str(exc)
    return batching


def _whole_number(text: str) -> int | str:
    """Return the text as an int, or unchanged when it is not a whole number."""
    try:
        return int(text)
    except ValueError:
        return text
