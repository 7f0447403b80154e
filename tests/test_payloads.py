from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from px.fields import CUSTOM_PREFIXES, FIELDS, mappable_fields
from px.payloads import (
    BuildOptions,
    MappingError,
    RecordError,
    build_payload,
    default_mapping,
    validate_mapping,
)
from px.templates import TEMPLATES

OPTIONS = BuildOptions(product_key="AP-X-2")

USER_HEADERS = (
    "User ID,Job Title,Email,First Name,Last Name,Sign-Up Date,Role,Phone,Time Zone"
).split(",")
EVENT_HEADERS = (
    "Account ID,User ID,Event Name,Event Date UTC-MS,Source,Terms,Category"
).split(",")

USER_RECORD = {
    "User ID": "tinyfrog185",
    "Job Title": "Engineer",
    "Email": "tinyfrog185@example.com",
    "First Name": "Ann",
    "Last Name": "Lee",
    "Sign-Up Date": "2020-11-29T17:05:23",
    "Role": "admin",
    "Phone": "+1 555 0100",
    "Time Zone": "GMT+7",
}

EVENT_RECORD = {
    "Account ID": "acc-9",
    "User ID": "tinyfrog185",
    "Event Name": "Report Exported",
    "Event Date UTC-MS": "1559696309000",
    "Source": "web",
    "Terms": "accepted",
    "Category": "reports",
}

ACCOUNT_MAPPING = {
    "id": {"attribute": "Account ID"},
    "name": {"attribute": "Name"},
    "numberOfEmployees": {"attribute": "Employees"},
    "nps": {"attribute": "NPS"},
    "renewalDate": {"attribute": "Renewal"},
    "location.city": {"attribute": "City"},
    "location.coordinates.latitude": {"attribute": "Lat"},
    "customAttributes.plan": {"attribute": "Plan"},
}

ACCOUNT_RECORD = {
    "Account ID": 3,
    "Name": "Acme",
    "Employees": "250",
    "NPS": "8.5",
    "Renewal": "2021-01-01",
    "City": "Austin",
    "Lat": "30.27",
    "Plan": "gold",
}


def find_empty_values(value, path=""):
    """Return the paths of None, "" and {} values nested in ``value``."""
    if value is None or value == "" or value == {}:
        return [path]
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found.extend(find_empty_values(item, f"{path}.{key}"))
        return found
    return []


# default_mapping


def test_default_mapping_user_headers():
    mapping = default_mapping("upsert_user", USER_HEADERS)
    assert mapping == {
        "identifyId": {"attribute": "User ID"},
        "title": {"attribute": "Job Title"},
        "email": {"attribute": "Email"},
        "firstName": {"attribute": "First Name"},
        "lastName": {"attribute": "Last Name"},
        "signUpDate": {"attribute": "Sign-Up Date"},
        "role": {"attribute": "Role"},
        "phone": {"attribute": "Phone"},
        "location.timeZone": {"attribute": "Time Zone"},
    }


def test_default_mapping_event_headers():
    mapping = default_mapping("track_event", EVENT_HEADERS)
    assert mapping == {
        "accountId": {"attribute": "Account ID"},
        "identifyId": {"attribute": "User ID"},
        "eventName": {"attribute": "Event Name"},
        "date": {"attribute": "Event Date UTC-MS"},
        "attributes.Source": {"attribute": "Source"},
        "attributes.Terms": {"attribute": "Terms"},
        "attributes.Category": {"attribute": "Category"},
    }


def test_default_mapping_follows_attribute_order():
    mapping = default_mapping("track_event", EVENT_HEADERS)
    assert [source["attribute"] for source in mapping.values()] == EVENT_HEADERS


@pytest.mark.parametrize("name", ["User ID", "user_id", "userId", "Identify ID"])
def test_default_mapping_identify_aliases(name):
    assert default_mapping("update_user", [name]) == {
        "identifyId": {"attribute": name}
    }


def test_default_mapping_account_id_for_accounts():
    mapping = default_mapping("upsert_account", ["Account ID", "Account Name"])
    assert mapping == {
        "id": {"attribute": "Account ID"},
        "name": {"attribute": "Account Name"},
    }


def test_default_mapping_account_id_for_users():
    assert default_mapping("upsert_user", ["Account ID"]) == {
        "accountId": {"attribute": "Account ID"}
    }


@pytest.mark.parametrize("name", ["Sign-Up Date", "Signup Date", "sign_up_date"])
def test_default_mapping_signup_aliases(name):
    assert default_mapping("upsert_user", [name]) == {
        "signUpDate": {"attribute": name}
    }


@pytest.mark.parametrize("name", ["Event Date", "Event Date UTC-MS", "timestamp"])
def test_default_mapping_event_date_aliases(name):
    mapping = default_mapping("track_event", [name])
    assert mapping == {"date": {"attribute": name}}


def test_default_mapping_location_leaves():
    mapping = default_mapping("upsert_user", ["City", "timezone", "Country Code"])
    assert mapping == {
        "location.city": {"attribute": "City"},
        "location.timeZone": {"attribute": "timezone"},
        "location.countryCode": {"attribute": "Country Code"},
    }


def test_default_mapping_custom_attributes():
    mapping = default_mapping(
        "upsert_account", ["Account ID", "Plan Tier", "Other"], ["plan_tier"]
    )
    assert mapping == {
        "id": {"attribute": "Account ID"},
        "customAttributes.plan_tier": {"attribute": "Plan Tier"},
    }


def test_default_mapping_standard_before_custom():
    mapping = default_mapping("upsert_account", ["Plan"], ["plan"])
    assert mapping == {"plan": {"attribute": "Plan"}}


def test_default_mapping_attribute_used_once():
    mapping = default_mapping("upsert_user", ["Email", "email", "Email"])
    assert mapping == {"email": {"attribute": "Email"}}


def test_default_mapping_event_duplicate_becomes_property():
    mapping = default_mapping("track_event", ["Event Name", "event_name"])
    assert mapping == {
        "eventName": {"attribute": "Event Name"},
        "attributes.event_name": {"attribute": "event_name"},
    }


def test_default_mapping_skips_product_key():
    assert default_mapping("upsert_user", ["propertyKeys"]) == {}
    assert default_mapping("track_event", ["propertyKey"]) == {
        "attributes.propertyKey": {"attribute": "propertyKey"}
    }


@pytest.mark.parametrize("template_key", list(TEMPLATES))
def test_default_mapping_passes_validation(template_key):
    object_type = TEMPLATES[template_key].object_type
    names = [field.path for field in mappable_fields(object_type)]
    mapping = default_mapping(template_key, names)
    assert validate_mapping(template_key, mapping) == []
    assert set(mapping) == set(names)


# validate_mapping


def test_validate_ok():
    mapping = default_mapping("upsert_user", USER_HEADERS)
    assert validate_mapping("upsert_user", mapping) == []


def test_validate_unknown_target():
    mapping = {"identifyId": {"attribute": "a"}, "jobTitle": {"attribute": "b"}}
    errors = validate_mapping("upsert_user", mapping)
    assert errors == [
        '"jobTitle" is not a Gainsight PX user field: choose a listed field, or'
        " customAttributes.<apiName> for a custom attribute"
    ]


def test_validate_event_prefix_on_user():
    mapping = {"identifyId": {"attribute": "a"}, "attributes.x": {"constant": 1}}
    errors = validate_mapping("update_user", mapping)
    assert len(errors) == 1
    assert "customAttributes.<apiName>" in errors[0]


def test_validate_custom_prefix_on_event():
    mapping = {
        "identifyId": {"attribute": "a"},
        "eventName": {"attribute": "b"},
        "customAttributes.x": {"attribute": "c"},
    }
    errors = validate_mapping("track_event", mapping)
    assert len(errors) == 1
    assert "attributes.<name> for an event property" in errors[0]


def test_validate_bare_prefix():
    mapping = {"identifyId": {"attribute": "a"}, "customAttributes.": {"constant": 1}}
    errors = validate_mapping("upsert_user", mapping)
    assert errors == [
        "customAttributes. has no name after the prefix: write"
        " customAttributes.<name>"
    ]


def test_validate_required_unmapped():
    errors = validate_mapping("upsert_account", {"id": {"attribute": "Account ID"}})
    assert errors == [
        "name (Account name) is required: map it to a Nexset attribute or a constant"
    ]


def test_validate_event_required():
    errors = validate_mapping("track_event", {})
    assert len(errors) == 2
    assert errors[0].startswith("identifyId (Identify ID) is required")
    assert errors[1].startswith("eventName (Event name) is required")


def test_validate_product_key_target():
    mapping = {"identifyId": {"attribute": "a"}, "propertyKeys": {"constant": ["x"]}}
    errors = validate_mapping("upsert_user", mapping)
    assert errors == [
        "propertyKeys is filled from the destination's product key: remove it from"
        " the mapping"
    ]


@pytest.mark.parametrize(
    "source",
    ["User ID", {"attr": "x"}, {"attribute": "a", "constant": 1}, {}, None],
)
def test_validate_bad_source_shape(source):
    errors = validate_mapping("upsert_user", {"identifyId": source})
    assert len(errors) == 1
    assert errors[0].startswith("identifyId: the source must be")


def test_validate_empty_attribute_name():
    errors = validate_mapping("upsert_user", {"identifyId": {"attribute": ""}})
    assert errors == [
        'identifyId: the attribute name must be a non-empty string, not ""'
    ]


def test_validate_bad_constant():
    mapping = {"identifyId": {"attribute": "a"}, "score": {"constant": "high"}}
    errors = validate_mapping("upsert_user", mapping)
    assert errors == [
        'The constant for score is invalid. "high" is not an integer: send a whole'
        " number such as 42"
    ]


def test_validate_bad_enum_constant():
    mapping = {
        "identifyId": {"attribute": "a"},
        "eventName": {"constant": "Login"},
        "userType": {"constant": "ADMIN"},
    }
    errors = validate_mapping("track_event", mapping)
    assert len(errors) == 1
    assert "LEAD, USER, VISITOR, EMPTY_USER_TYPE" in errors[0]


def test_validate_empty_required_constant():
    errors = validate_mapping("upsert_user", {"identifyId": {"constant": ""}})
    assert errors == [
        "identifyId is required but its constant is empty: set a value or map it"
        " to a Nexset attribute"
    ]


def test_validate_not_a_dict():
    errors = validate_mapping("upsert_user", ["identifyId"])
    assert len(errors) == 1
    assert errors[0].startswith("The mapping must be an object")


def test_validate_unknown_template():
    with pytest.raises(ValueError, match="unknown template 'upsert_lead'"):
        validate_mapping("upsert_lead", {})


# build_payload: users


@pytest.mark.parametrize("template_key", ["upsert_user", "update_user"])
def test_user_payload_expected(template_key):
    mapping = default_mapping(template_key, USER_HEADERS)
    payload = build_payload(template_key, USER_RECORD, mapping, OPTIONS)
    assert payload == {
        "identifyId": "tinyfrog185",
        "propertyKeys": ["AP-X-2"],
        "title": "Engineer",
        "email": "tinyfrog185@example.com",
        "firstName": "Ann",
        "lastName": "Lee",
        "signUpDate": 1606669523000,
        "role": "admin",
        "phone": "+1 555 0100",
        "location": {"timeZone": "GMT+7"},
    }


def test_user_key_order():
    mapping = {
        "email": {"attribute": "Email"},
        "identifyId": {"attribute": "User ID"},
        "lastName": {"attribute": "Last Name"},
    }
    payload = build_payload("upsert_user", USER_RECORD, mapping, OPTIONS)
    assert list(payload) == ["identifyId", "propertyKeys", "email", "lastName"]


def test_user_date_in_timezone():
    mapping = {
        "identifyId": {"attribute": "User ID"},
        "signUpDate": {"attribute": "Sign-Up Date"},
    }
    options = BuildOptions(product_key="AP-X-2", timezone="Asia/Bangkok")
    payload = build_payload("upsert_user", USER_RECORD, mapping, options)
    assert payload["signUpDate"] == 1606669523000 - 7 * 3600 * 1000


def test_user_typed_fields():
    record = {
        "id": 42,
        "score": "12",
        "unsub": "yes",
        "gender": "female",
        "type": "lead",
        "lat": "13.75",
    }
    mapping = {
        "identifyId": {"attribute": "id"},
        "score": {"attribute": "score"},
        "globalUnsubscribe": {"attribute": "unsub"},
        "gender": {"attribute": "gender"},
        "type": {"attribute": "type"},
        "location.coordinates.latitude": {"attribute": "lat"},
    }
    payload = build_payload("upsert_user", record, mapping, OPTIONS)
    assert payload["identifyId"] == "42"
    assert payload["score"] == 12
    assert payload["globalUnsubscribe"] is True
    assert payload["gender"] == "FEMALE"
    assert payload["type"] == "LEAD"
    assert payload["location"] == {"coordinates": {"latitude": 13.75}}


def test_user_custom_attributes_typed():
    record = {
        "User ID": "u1",
        "Plan": "gold",
        "Trial End": "2021-01-01",
        "Seats": "10",
        "Beta": "no",
    }
    mapping = {
        "identifyId": {"attribute": "User ID"},
        "customAttributes.plan": {"attribute": "Plan"},
        "customAttributes.trialEnd": {"attribute": "Trial End"},
        "customAttributes.seats": {"attribute": "Seats"},
        "customAttributes.beta": {"attribute": "Beta"},
    }
    custom_types = {
        "plan": "STRING",
        "trialEnd": "DATE_TIME",
        "seats": "NUMBER",
        "beta": "BOOLEAN",
    }
    payload = build_payload("upsert_user", record, mapping, OPTIONS, custom_types)
    assert payload["customAttributes"] == {
        "plan": "gold",
        "trialEnd": 1609459200000,
        "seats": 10,
        "beta": False,
    }


def test_user_custom_attribute_untyped_passthrough():
    record = {"User ID": "u1", "Tier": "007", "Tags": ["a", "b"]}
    mapping = {
        "identifyId": {"attribute": "User ID"},
        "customAttributes.tier": {"attribute": "Tier"},
        "customAttributes.tags": {"attribute": "Tags"},
    }
    payload = build_payload("upsert_user", record, mapping, OPTIONS)
    assert payload["customAttributes"] == {"tier": "007", "tags": ["a", "b"]}


def test_user_custom_attribute_bad_value():
    record = {"User ID": "u1", "Trial End": "next week"}
    mapping = {
        "identifyId": {"attribute": "User ID"},
        "customAttributes.trialEnd": {"attribute": "Trial End"},
    }
    with pytest.raises(RecordError) as caught:
        build_payload(
            "upsert_user", record, mapping, OPTIONS, {"trialEnd": "DATE_TIME"}
        )
    assert str(caught.value) == (
        'Attribute "Trial End" for customAttributes.trialEnd is invalid. "next week"'
        " is not a date: use ISO 8601 (2020-12-31T10:00:00) or epoch milliseconds"
    )


def test_user_empty_left_out():
    record = dict(USER_RECORD, **{"First Name": "", "Time Zone": "  ", "Phone": None})
    mapping = default_mapping("upsert_user", USER_HEADERS)
    payload = build_payload("upsert_user", record, mapping, OPTIONS)
    assert "firstName" not in payload
    assert "phone" not in payload
    assert "location" not in payload


def test_user_missing_attribute_left_out():
    record = {"User ID": "u1"}
    mapping = default_mapping("upsert_user", USER_HEADERS)
    payload = build_payload("upsert_user", record, mapping, OPTIONS)
    assert payload == {"identifyId": "u1", "propertyKeys": ["AP-X-2"]}


def test_user_send_nulls():
    record = dict(USER_RECORD, **{"First Name": "", "Time Zone": ""})
    mapping = default_mapping("upsert_user", USER_HEADERS)
    options = BuildOptions(product_key="AP-X-2", send_nulls=True)
    payload = build_payload("upsert_user", record, mapping, options)
    assert payload["firstName"] is None
    assert payload["location"] == {"timeZone": None}
    assert payload["email"] == "tinyfrog185@example.com"


def test_user_required_empty():
    record = dict(USER_RECORD, **{"User ID": ""})
    mapping = default_mapping("upsert_user", USER_HEADERS)
    with pytest.raises(RecordError) as caught:
        build_payload("upsert_user", record, mapping, OPTIONS)
    assert str(caught.value) == (
        'identifyId is required but attribute "User ID" is empty in this record'
    )
    assert caught.value.target == "identifyId"
    assert caught.value.attribute == "User ID"


def test_user_required_empty_even_with_send_nulls():
    record = dict(USER_RECORD, **{"User ID": None})
    mapping = default_mapping("upsert_user", USER_HEADERS)
    options = BuildOptions(product_key="AP-X-2", send_nulls=True)
    with pytest.raises(RecordError, match="identifyId is required"):
        build_payload("upsert_user", record, mapping, options)


def test_user_required_missing_from_record():
    mapping = default_mapping("upsert_user", USER_HEADERS)
    with pytest.raises(RecordError) as caught:
        build_payload("upsert_user", {"Email": "a@b.c"}, mapping, OPTIONS)
    assert str(caught.value) == (
        'identifyId is required but attribute "User ID" is missing from this record'
    )


def test_user_required_unmapped():
    mapping = {"email": {"attribute": "Email"}}
    with pytest.raises(RecordError) as caught:
        build_payload("update_user", USER_RECORD, mapping, OPTIONS)
    assert str(caught.value).startswith("identifyId is required but not mapped")


def test_user_bad_date():
    record = dict(USER_RECORD, **{"Sign-Up Date": "31/12/2020"})
    mapping = default_mapping("upsert_user", USER_HEADERS)
    with pytest.raises(RecordError) as caught:
        build_payload("upsert_user", record, mapping, OPTIONS)
    assert str(caught.value) == (
        'Attribute "Sign-Up Date" for signUpDate is invalid. "31/12/2020" is not a'
        " date: use ISO 8601 (2020-12-31T10:00:00) or epoch milliseconds"
    )
    assert caught.value.target == "signUpDate"


def test_user_bad_timezone_option():
    mapping = default_mapping("upsert_user", USER_HEADERS)
    options = BuildOptions(product_key="AP-X-2", timezone="GMT+7")
    with pytest.raises(RecordError, match='"GMT\\+7" is not a known time zone'):
        build_payload("upsert_user", USER_RECORD, mapping, options)


def test_user_constant_source():
    mapping = {
        "identifyId": {"attribute": "User ID"},
        "role": {"constant": "viewer"},
    }
    payload = build_payload("upsert_user", USER_RECORD, mapping, OPTIONS)
    assert payload["role"] == "viewer"


def test_empty_product_key():
    mapping = default_mapping("upsert_user", USER_HEADERS)
    with pytest.raises(RecordError, match="product key is empty"):
        build_payload("upsert_user", USER_RECORD, mapping, BuildOptions(" "))


def test_invalid_mapping_raises():
    mapping = {"identifyId": {"attribute": "User ID"}, "jobTitle": {"attribute": "x"}}
    with pytest.raises(MappingError, match="jobTitle"):
        build_payload("upsert_user", USER_RECORD, mapping, OPTIONS)


# build_payload: accounts


@pytest.mark.parametrize("template_key", ["upsert_account", "update_account"])
def test_account_payload(template_key):
    payload = build_payload(template_key, ACCOUNT_RECORD, ACCOUNT_MAPPING, OPTIONS)
    assert payload == {
        "id": "3",
        "propertyKeys": ["AP-X-2"],
        "name": "Acme",
        "numberOfEmployees": 250,
        "nps": 8.5,
        "renewalDate": 1609459200000,
        "location": {"city": "Austin", "coordinates": {"latitude": 30.27}},
        "customAttributes": {"plan": "gold"},
    }


def test_account_numeric_id_string():
    payload = build_payload("upsert_account", ACCOUNT_RECORD, ACCOUNT_MAPPING, OPTIONS)
    assert payload["id"] == "3"


def test_account_float_id_string():
    record = dict(ACCOUNT_RECORD, **{"Account ID": 3.0})
    payload = build_payload("upsert_account", record, ACCOUNT_MAPPING, OPTIONS)
    assert payload["id"] == "3"


def test_account_int32_overflow():
    record = dict(ACCOUNT_RECORD, Employees="3000000000")
    with pytest.raises(RecordError, match="out of range"):
        build_payload("upsert_account", record, ACCOUNT_MAPPING, OPTIONS)


def test_account_decimal_comma():
    record = dict(ACCOUNT_RECORD, NPS="8,5")
    with pytest.raises(RecordError) as caught:
        build_payload("upsert_account", record, ACCOUNT_MAPPING, OPTIONS)
    assert str(caught.value) == (
        'Attribute "NPS" for nps is invalid. "8,5" has a decimal comma, which is not'
        " guessed: use a dot (1.5)"
    )


def test_update_account_needs_no_name():
    record = dict(ACCOUNT_RECORD, Name="")
    payload = build_payload("update_account", record, ACCOUNT_MAPPING, OPTIONS)
    assert "name" not in payload
    assert payload["id"] == "3"


def test_update_account_unmapped_name_is_valid():
    mapping = {k: v for k, v in ACCOUNT_MAPPING.items() if k != "name"}
    assert validate_mapping("update_account", mapping) == []


def test_account_name_required():
    record = dict(ACCOUNT_RECORD, Name="")
    with pytest.raises(RecordError) as caught:
        build_payload("upsert_account", record, ACCOUNT_MAPPING, OPTIONS)
    assert str(caught.value) == (
        'name is required but attribute "Name" is empty in this record'
    )


def test_account_no_empty_nested_objects():
    record = dict(ACCOUNT_RECORD, City="", Lat="", Plan="")
    payload = build_payload("upsert_account", record, ACCOUNT_MAPPING, OPTIONS)
    assert "location" not in payload
    assert "customAttributes" not in payload


def test_account_send_nulls_custom():
    record = dict(ACCOUNT_RECORD, Plan="")
    options = BuildOptions(product_key="AP-X-2", send_nulls=True)
    payload = build_payload("upsert_account", record, ACCOUNT_MAPPING, options)
    assert payload["customAttributes"] == {"plan": None}


# build_payload: events


def test_event_payload():
    mapping = default_mapping("track_event", EVENT_HEADERS)
    payload = build_payload("track_event", EVENT_RECORD, mapping, OPTIONS)
    assert payload == {
        "identifyId": "tinyfrog185",
        "propertyKey": "AP-X-2",
        "accountId": "acc-9",
        "eventName": "Report Exported",
        "date": 1559696309000,
        "attributes": {"Source": "web", "Terms": "accepted", "Category": "reports"},
        "userType": "USER",
    }


def test_event_key_order():
    mapping = default_mapping("track_event", EVENT_HEADERS)
    payload = build_payload("track_event", EVENT_RECORD, mapping, OPTIONS)
    assert list(payload)[:2] == ["identifyId", "propertyKey"]
    assert list(payload)[-1] == "userType"


def test_event_date_seconds():
    record = dict(EVENT_RECORD, **{"Event Date UTC-MS": 1559696309})
    mapping = default_mapping("track_event", EVENT_HEADERS)
    payload = build_payload("track_event", record, mapping, OPTIONS)
    assert payload["date"] == 1559696309000


def test_event_user_type_mapped():
    record = dict(EVENT_RECORD, Kind="lead")
    mapping = dict(default_mapping("track_event", EVENT_HEADERS))
    mapping["userType"] = {"attribute": "Kind"}
    payload = build_payload("track_event", record, mapping, OPTIONS)
    assert payload["userType"] == "LEAD"


def test_event_user_type_empty_uses_default():
    record = dict(EVENT_RECORD, Kind="")
    mapping = {
        "identifyId": {"attribute": "User ID"},
        "eventName": {"attribute": "Event Name"},
        "userType": {"attribute": "Kind"},
    }
    options = BuildOptions(product_key="AP-X-2", send_nulls=True)
    payload = build_payload("track_event", record, mapping, options)
    assert payload["userType"] == "USER"


def test_event_nested_attribute_values_json():
    record = dict(EVENT_RECORD, Source={"page": "home", "n": 2}, Terms=[1, 2])
    mapping = default_mapping("track_event", EVENT_HEADERS)
    payload = build_payload("track_event", record, mapping, OPTIONS)
    assert payload["attributes"]["Source"] == '{"page":"home","n":2}'
    assert payload["attributes"]["Terms"] == "[1,2]"


def test_event_attribute_values_native():
    record = dict(EVENT_RECORD, Source=42, Terms=True)
    mapping = default_mapping("track_event", EVENT_HEADERS)
    payload = build_payload("track_event", record, mapping, OPTIONS)
    assert payload["attributes"]["Source"] == 42
    assert payload["attributes"]["Terms"] is True


def test_event_empty_attributes_left_out():
    record = dict(EVENT_RECORD, Source="", Terms=None, Category=" ")
    mapping = default_mapping("track_event", EVENT_HEADERS)
    payload = build_payload("track_event", record, mapping, OPTIONS)
    assert "attributes" not in payload


def test_event_name_required():
    record = dict(EVENT_RECORD, **{"Event Name": ""})
    mapping = default_mapping("track_event", EVENT_HEADERS)
    with pytest.raises(RecordError) as caught:
        build_payload("track_event", record, mapping, OPTIONS)
    assert str(caught.value) == (
        'eventName is required but attribute "Event Name" is empty in this record'
    )


def test_event_bad_date():
    record = dict(EVENT_RECORD, **{"Event Date UTC-MS": "yesterday"})
    mapping = default_mapping("track_event", EVENT_HEADERS)
    with pytest.raises(RecordError) as caught:
        build_payload("track_event", record, mapping, OPTIONS)
    assert 'Attribute "Event Date UTC-MS" for date is invalid' in str(caught.value)
    assert '"yesterday"' in str(caught.value)


# catalogue consistency


def test_templates_key_fields_required():
    for template in TEMPLATES.values():
        fields = {field.path: field for field in FIELDS[template.object_type]}
        assert fields[template.key_field].required, template.key


def test_update_templates_never_create():
    assert not TEMPLATES["update_user"].creates
    assert not TEMPLATES["update_account"].creates
    assert "Never creates" in TEMPLATES["update_user"].description
    assert "Never creates" in TEMPLATES["update_account"].description


def test_upsert_templates_create_path():
    assert TEMPLATES["upsert_user"].create_path == "/v1/users"
    assert TEMPLATES["upsert_account"].create_path == "/v1/accounts"


# property: random string records


record_values = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(["", " ", "2020-11-29T17:05:23", "1559696309000", "yes", "3"]),
)


@pytest.mark.parametrize("template_key", list(TEMPLATES))
@given(data=st.data())
def test_build_returns_clean_dict_or_record_error(template_key, data):
    object_type = TEMPLATES[template_key].object_type
    names = [field.path for field in mappable_fields(object_type)]
    mapping = default_mapping(template_key, names)
    mapping[CUSTOM_PREFIXES[object_type] + "x"] = {"attribute": "x"}
    record = {name: data.draw(record_values) for name in [*names, "x"]}
    try:
        payload = build_payload(template_key, record, mapping, OPTIONS)
    except RecordError:
        return
    assert isinstance(payload, dict)
    assert find_empty_values(payload) == []
