from tests.test_configure import *
def test_dbg(owner_client, make_nexset, credential):
    destination = create_through_form(owner_client, make_nexset(CUSTOM_CSV), credential)
    fields = shown_form(owner_client, destination)
    switched = post_form(owner_client, configure_url(destination), fields, {"template": "upsert_account", "action": "change_template"}, HTMX)
    fields = read_form(switched.content.decode())
    row = row_index(fields, "name")
    changes = {"product_key": "AP-TEST-2", f"source_{row}": "__constant__", f"constant_{row}": "Acme", "action": "save"}
    r = post_form(owner_client, configure_url(destination), fields, changes)
    print("STATUS", r.status_code, re.findall(r'class="error"[^>]*>([^<]*)', r.content.decode()))
