"""Building of Gainsight PX request bodies from Nexset records.

A mapping gives the source of each PX target's value::

    {"identifyId": {"attribute": "User ID"},
     "location.timeZone": {"attribute": "Time Zone"},
     "customAttributes.plan": {"constant": "gold"}}

Targets are catalogue paths from px.fields, dotted for nested objects, or custom
targets (``customAttributes.<apiName>`` for users and accounts,
``attributes.<name>`` for events). Sources name a Nexset attribute or give a
constant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from px.convert import (
    CUSTOM_TYPES,
    ConversionError,
    check_range,
    convert,
    is_empty,
    show,
    to_string,
)
from px.fields import (
    CUSTOM_PREFIXES,
    DEFAULT_VALUES,
    FIELDS,
    INTEGER_RANGES,
    PRODUCT_KEY_FIELDS,
    Field,
    custom_name,
    fields_needing_mapping,
    get_field,
    mappable_fields,
)
from px.templates import get_template

SOURCE_EXAMPLE = '{"attribute": "<Nexset attribute name>"} or {"constant": <value>}'

# Nexset attribute names that default_mapping matches to a field besides the field's
# path, label and (for nested fields) last path segment. Matching ignores case,
# spaces, "_", "-" and ".". Aliases for paths an object lacks are ignored, so
# "Account ID" means id for accounts and accountId for users and events.
ALIASES: dict[str, tuple[str, ...]] = {
    "identifyId": ("User ID", "Identify ID"),
    "id": ("Account ID",),
    "accountId": ("Account ID",),
    "name": ("Account Name",),
    "email": ("Email Address", "E-mail"),
    "phone": ("Phone Number",),
    "title": ("Job Title",),
    "signUpDate": ("Sign-Up Date", "Signup Date"),
    "eventName": ("Event Name",),
    "date": ("Event Date", "Event Date UTC-MS", "Timestamp"),
    "location.timeZone": ("Time Zone",),
    "location.countryName": ("Country",),
    "location.stateName": ("State",),
    "location.postalCode": ("Zip", "Zip Code", "Postcode"),
    "location.regionName": ("Region",),
    "location.street": ("Street Address",),
    "location.coordinates.latitude": ("Lat",),
    "location.coordinates.longitude": ("Lng", "Lon", "Long"),
}

_IGNORED_IN_NAMES_RE = re.compile(r"[\s_.\-]+")


@dataclass(frozen=True)
class BuildOptions:
    """Destination settings that apply to every record.

    ``timezone`` is the IANA zone for dates written without an offset.
    ``send_nulls`` sends empty values as null instead of leaving them out.
    """

    product_key: str
    timezone: str = "UTC"
    send_nulls: bool = False


class RecordError(ValueError):
    """Record that cannot be sent, with a message for the user.

    ``target`` is the PX field and ``attribute`` the Nexset attribute involved,
    when the error concerns one.
    """

    def __init__(
        self, message: str, target: str | None = None, attribute: str | None = None
    ) -> None:
        super().__init__(message)
        self.target = target
        self.attribute = attribute


class MappingError(ValueError):
    """Mapping that validate_mapping rejects, found while building a payload."""


@dataclass(frozen=True)
class _Target:
    path: str
    keys: tuple[str, ...]
    field: Field | None = None
    custom_name: str | None = None


def validate_mapping(template_key: str, mapping: Any) -> list[str]:
    """Return the configuration errors in ``mapping``, or an empty list.

    Finds unknown targets, sources of the wrong shape, constants that do not
    convert, and required targets that are unmapped. Each message names the target
    and the fix. Raises ValueError for an unknown template key.
    """
    template = get_template(template_key)
    object_type = template.object_type
    required = required_paths(template_key)
    if not isinstance(mapping, dict):
        return [
            f"The mapping must be an object from target field to source, not"
            f" {show(mapping)}"
        ]

    errors: list[str] = []
    for target_path, source in mapping.items():
        target_or_error = _resolve_target(object_type, target_path)
        if isinstance(target_or_error, str):
            errors.append(target_or_error)
            continue
        source_error = _check_source(target_path, source)
        if source_error:
            errors.append(source_error)
            continue
        constant_error = _check_constant(target_or_error, source, required)
        if constant_error:
            errors.append(constant_error)

    for field in fields_needing_mapping(object_type):
        if field.path in required and field.path not in mapping:
            errors.append(
                f"{field.path} ({field.label}) is required: map it to a Nexset"
                " attribute or a constant"
            )
    return errors


def build_payload(
    template_key: str,
    record: dict[str, Any],
    mapping: dict[str, dict[str, Any]],
    options: BuildOptions,
    custom_types: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build the JSON body for one record.

    The template's key field comes first, then the product key, then the other
    targets in mapping order. Values are converted to their PX types, and
    ``customAttributes.<apiName>`` values by ``custom_types[apiName]`` (a PX
    metadata type) when it is given. Event properties pass through unchanged,
    except that lists and objects become JSON strings. Empty values are left out,
    or sent as null with ``options.send_nulls``.

    Raises RecordError when a required field is unmapped or empty, when a value
    does not convert, or when the product key is empty. Raises MappingError for a
    mapping that validate_mapping rejects.
    """
    template = get_template(template_key)
    object_type = template.object_type
    required = required_paths(template_key)
    product_key = options.product_key.strip() if options.product_key else ""
    if not product_key:
        raise RecordError(
            "The product key is empty: set the destination's product key"
            " (AP-XXXXXXXXXX-2)",
            target=PRODUCT_KEY_FIELDS[object_type],
        )
    for field in fields_needing_mapping(object_type):
        if field.path in required and field.path not in mapping:
            raise RecordError(
                f"{field.path} is required but not mapped: map it to a Nexset"
                " attribute in the destination settings",
                target=field.path,
            )

    # Catalogue order, then custom targets by name: PostgreSQL's jsonb keeps
    # no key order, and the body bytes must not depend on how it was stored.
    catalogue = {
        field.path: index for index, field in enumerate(mappable_fields(object_type))
    }
    ordered_paths = sorted(
        mapping,
        key=lambda path: (path not in catalogue, catalogue.get(path, 0), path),
    )
    if template.key_field in mapping:
        ordered_paths.remove(template.key_field)
        ordered_paths.insert(0, template.key_field)

    entries: list[tuple[tuple[str, ...], Any]] = []
    for path in ordered_paths:
        target = _resolve_or_raise(object_type, path, mapping[path])
        entry = _build_entry(
            object_type, target, record, mapping[path], options, custom_types, required
        )
        if entry is not None:
            entries.append(entry)

    product_key_path = PRODUCT_KEY_FIELDS[object_type]
    product_key_value: Any = product_key
    if get_field(object_type, product_key_path).type == "string_list":
        product_key_value = [product_key]
    position = 1 if entries and entries[0][0] == (template.key_field,) else 0
    entries.insert(position, ((product_key_path,), product_key_value))

    written = {keys for keys, _ in entries}
    for path, value in DEFAULT_VALUES.get(object_type, {}).items():
        if (path,) not in written:
            entries.append(((path,), value))

    payload: dict[str, Any] = {}
    for keys, value in entries:
        _set_nested(payload, keys, value)
    return payload


def default_mapping(
    template_key: str,
    attribute_names: list[str],
    custom_attribute_names: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """Propose a mapping by matching Nexset attribute names to PX targets.

    Names match a field's path, label, last path segment or an alias in ALIASES,
    and then a custom attribute apiName, ignoring case, spaces, "_", "-" and ".".
    Each attribute and each target is used at most once, the first attribute
    winning. For events, every attribute left over becomes an event property
    (``attributes.<name>``). The mapping follows the order of
    ``attribute_names``.
    """
    template = get_template(template_key)
    object_type = template.object_type
    prefix = CUSTOM_PREFIXES[object_type]
    field_index = _field_index(object_type)
    custom_index: dict[str, str] = {}
    for name in custom_attribute_names:
        if name:
            custom_index.setdefault(_normalize(name), prefix + name)

    mapping: dict[str, dict[str, Any]] = {}
    used_attributes: set[str] = set()
    for attribute in attribute_names:
        if attribute in used_attributes:
            continue
        key = _normalize(attribute)
        candidates = [field_index.get(key), custom_index.get(key)]
        if object_type == "event" and attribute.strip():
            candidates.append(prefix + attribute)
        for target in candidates:
            if target is not None and target not in mapping:
                mapping[target] = {"attribute": attribute}
                used_attributes.add(attribute)
                break
    return mapping


def _normalize(name: str) -> str:
    return _IGNORED_IN_NAMES_RE.sub("", name).casefold()


def _field_index(object_type: str) -> dict[str, str]:
    """Map normalized names to field paths, stronger matches first."""
    fields = mappable_fields(object_type)
    names_by_strength = [
        [(field.path, field.path) for field in fields],
        [
            (alias, field.path)
            for field in fields
            for alias in ALIASES.get(field.path, ())
        ],
        [(field.label, field.path) for field in fields],
        [(field.path.rsplit(".", 1)[-1], field.path) for field in fields],
    ]
    index: dict[str, str] = {}
    for names in names_by_strength:
        for name, path in names:
            index.setdefault(_normalize(name), path)
    return index


def _resolve_target(object_type: str, path: Any) -> _Target | str:
    """Return the target for ``path``, or an error message naming the fix."""
    prefix = CUSTOM_PREFIXES[object_type]
    if not isinstance(path, str) or not path:
        return (
            f"Target {show(path)} is not a field path: use a Gainsight PX"
            f" {object_type} field or {prefix}<name>"
        )
    if path == PRODUCT_KEY_FIELDS[object_type]:
        return (
            f"{path} is filled from the destination's product key: remove it"
            " from the mapping"
        )

    field = get_field(object_type, path)
    if field is not None:
        return _Target(path, tuple(path.split(".")), field=field)

    name = custom_name(object_type, path)
    if name == "":
        return f"{path} has no name after the prefix: write {prefix}<name>"
    if name is not None:
        return _Target(path, (prefix.rstrip("."), name), custom_name=name)

    hint = f"{prefix}<apiName> for a custom attribute"
    if object_type == "event":
        hint = f"{prefix}<name> for an event property"
    return (
        f'"{path}" is not a Gainsight PX {object_type} field: choose a listed'
        f" field, or {hint}"
    )


def _check_source(path: str, source: Any) -> str | None:
    """Return an error message if ``source`` has the wrong shape."""
    if not isinstance(source, dict) or len(source) != 1:
        return f"{path}: the source must be {SOURCE_EXAMPLE}, not {show(source)}"
    if "constant" in source:
        return None
    if "attribute" not in source:
        return f"{path}: the source must be {SOURCE_EXAMPLE}, not {show(source)}"
    attribute = source["attribute"]
    if not isinstance(attribute, str) or not attribute:
        return (
            f"{path}: the attribute name must be a non-empty string, not"
            f" {show(attribute)}"
        )
    return None


def required_paths(template_key: str) -> frozenset[str]:
    """Return the fields a template's payload must carry.

    Templates that create objects need every field the PX contract requires.
    An update never creates, so it needs only its key: PX's update endpoints
    (and the sandbox) keep the stored values of fields left out.
    """
    template = get_template(template_key)
    fields = [field.path for field in FIELDS[template.object_type] if field.required]
    if not template.creates:
        fields = [path for path in fields if path == template.key_field]
    return frozenset(fields) | {PRODUCT_KEY_FIELDS[template.object_type]}


def _check_constant(
    target: _Target, source: dict[str, Any], required: frozenset[str]
) -> str | None:
    """Return an error message if a constant source cannot be sent."""
    if "constant" not in source:
        return None
    value = source["constant"]
    if is_empty(value):
        if target.path in required:
            return (
                f"{target.path} is required but its constant is empty: set a value"
                " or map it to a Nexset attribute"
            )
        return None
    if target.field is None:
        return None
    try:
        _convert_field(target.field, value, "UTC")
    except ConversionError as error:
        return f"The constant for {target.path} is invalid. {error}"
    return None


def _resolve_or_raise(object_type: str, path: str, source: Any) -> _Target:
    target_or_error = _resolve_target(object_type, path)
    if isinstance(target_or_error, str):
        raise MappingError(target_or_error)
    source_error = _check_source(path, source)
    if source_error:
        raise MappingError(source_error)
    return target_or_error


def _build_entry(
    object_type: str,
    target: _Target,
    record: dict[str, Any],
    source: dict[str, Any],
    options: BuildOptions,
    custom_types: dict[str, str] | None,
    required: frozenset[str],
) -> tuple[tuple[str, ...], Any] | None:
    """Return the payload keys and value for one target, or None to leave it out."""
    attribute = source.get("attribute")
    if attribute is None:
        value = source["constant"]
        origin = "The constant"
    else:
        value = record.get(attribute)
        origin = f'Attribute "{attribute}"'

    if is_empty(value):
        if target.path in DEFAULT_VALUES.get(object_type, {}):
            return None
        if target.path in required:
            raise RecordError(
                _required_message(target.path, attribute, record),
                target=target.path,
                attribute=attribute,
            )
        if options.send_nulls:
            return target.keys, None
        return None

    try:
        converted = _convert_target(target, value, options.timezone, custom_types)
    except ConversionError as error:
        raise RecordError(
            f"{origin} for {target.path} is invalid. {error}",
            target=target.path,
            attribute=attribute,
        ) from error
    return target.keys, converted


def _required_message(path: str, attribute: str | None, record: dict[str, Any]) -> str:
    if attribute is None:
        return f"{path} is required but its constant is empty"
    if attribute not in record:
        return (
            f'{path} is required but attribute "{attribute}" is missing from this'
            " record"
        )
    return f'{path} is required but attribute "{attribute}" is empty in this record'


def _convert_target(
    target: _Target, value: Any, tz: str, custom_types: dict[str, str] | None
) -> Any:
    if target.field is not None:
        return _convert_field(target.field, value, tz)
    if target.keys[0] == "attributes":
        # PX stores nested event property values as strings.
        if isinstance(value, (dict, list)):
            return to_string(value)
        return value
    custom_type = (custom_types or {}).get(target.custom_name or "")
    if custom_type in CUSTOM_TYPES:
        return convert(value, custom_type, tz)
    return value


def _convert_field(field: Field, value: Any, tz: str) -> Any:
    converted = convert(value, field.type, tz, field.choices)
    bounds = INTEGER_RANGES.get(field.path)
    if bounds is not None:
        check_range(converted, bounds)
    return converted


def _set_nested(payload: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = payload
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
