"""The official Stripe Python SDK against the sandbox: everything catalog-sync relies on.

Usage: stripe_python.py BASE_URL. Exits non-zero with the failing check on any mismatch.
"""
import sys
import uuid

import stripe

base = sys.argv[1]
run = uuid.uuid4().hex[:8]
client = stripe.StripeClient(f"sk_test_py_{run}", base_addresses={"api": base}, max_network_retries=0)
v1 = client.v1

pid = f"py-{run}"
p = v1.products.create(params={
    "id": pid, "name": "Python Hat", "description": "made by stripe-python",
    "images": ["https://img.example/hat.png"], "metadata": {"color": "red", "size": "M"},
    "shippable": True,
})
assert p.id == pid and p.active is True and p.metadata["color"] == "red", p
assert p.images == ["https://img.example/hat.png"]

p = v1.products.update(pid, params={"metadata": {"color": ""}, "name": "Python Cap"})
assert "color" not in p.metadata and p.metadata["size"] == "M" and p.name == "Python Cap", p

got = v1.products.retrieve(pid)
assert got.name == "Python Cap"

month = v1.prices.create(params={
    "product": pid, "currency": "usd", "unit_amount": 1500, "lookup_key": f"lk-{run}",
    "recurring": {"interval": "month", "interval_count": 1}, "metadata": {"catalog_sync_managed": "true"},
})
assert month.type == "recurring" and month.recurring.interval == "month", month
yen = v1.prices.create(params={"product": pid, "currency": "jpy", "unit_amount": 500})
assert yen.unit_amount == 500 and yen.type == "one_time"

moved = v1.prices.create(params={
    "product": pid, "currency": "usd", "unit_amount": 1700, "lookup_key": f"lk-{run}",
    "transfer_lookup_key": True, "recurring": {"interval": "month"},
})
found = v1.prices.list(params={"lookup_keys": [f"lk-{run}"]})
assert [x.id for x in found.data] == [moved.id], found
old = v1.prices.update(month.id, params={"active": False})
assert old.active is False and old.lookup_key is None

p = v1.products.update(pid, params={"default_price": moved.id, "expand": ["default_price"]})
assert p.default_price.id == moved.id and p.default_price.unit_amount == 1700

# Shipping, statement and tax fields (issue 16), as the SDK sends and reads them.
p = v1.products.update(pid, params={
    "statement_descriptor": "PY HATS", "marketing_features": [{"name": "Wool"}, {"name": "Warm"}],
    "package_dimensions": {"height": 2, "length": 10.5, "weight": 4.25, "width": 8},
})
assert p.statement_descriptor == "PY HATS" and p.shippable is True, p
assert [f.name for f in p.marketing_features] == ["Wool", "Warm"], p
assert p.package_dimensions.length == 10.5 and p.package_dimensions.weight == 4.25, p
p = v1.products.update(pid, params={"package_dimensions": "", "marketing_features": ""})
assert p.package_dimensions is None and p.marketing_features == [], p
taxed = v1.prices.create(params={"product": pid, "currency": "gbp", "unit_amount": 900, "tax_behavior": "inclusive",
                                 "metadata": {"channel": "web"}})
assert taxed.tax_behavior == "inclusive" and taxed.metadata["channel"] == "web", taxed
try:
    v1.prices.update(taxed.id, params={"tax_behavior": "exclusive"})
    raise AssertionError("a set tax behavior is fixed")
except stripe.InvalidRequestError as e:
    assert e.http_status == 400 and e.param == "tax_behavior", e
open_tax = v1.prices.update(yen.id, params={"tax_behavior": "exclusive"})
assert open_tax.tax_behavior == "exclusive", open_tax
assert v1.prices.update(taxed.id, params={"active": False}).active is False

# Tiered prices in two currencies: created, read and listed with their tiers, updated in place.
tiered = v1.prices.create(params={
    "product": pid, "currency": "usd", "billing_scheme": "tiered", "tiers_mode": "volume",
    "recurring": {"interval": "month"},
    "tiers": [{"up_to": 10, "unit_amount": 1000}, {"up_to": "inf", "unit_amount": 800, "flat_amount": 100}],
    "currency_options": {"eur": {"tiers": [{"up_to": 10, "unit_amount": 900}, {"up_to": "inf", "unit_amount": 700}]}},
})
assert tiered.billing_scheme == "tiered" and tiered.unit_amount is None, tiered
got = v1.prices.retrieve(tiered.id, params={"expand": ["tiers", "currency_options"]})
assert [t.up_to for t in got.tiers] == [10, None] and got.tiers[1].flat_amount == 100, got
assert got.currency_options["eur"].tiers[0].unit_amount == 900, got
page = v1.prices.list(params={"product": pid, "type": "recurring", "active": True, "expand": ["data.tiers"]})
assert any(x.id == tiered.id and x.tiers[0].up_to == 10 for x in page.data), page
multi = v1.prices.create(params={"product": pid, "currency": "usd", "unit_amount": 400,
                                 "currency_options": {"eur": {"unit_amount": 370}}})
multi = v1.prices.update(multi.id, params={"currency_options": {"eur": {"unit_amount": 380}, "gbp": {"unit_amount": 320}},
                                           "expand": ["currency_options"]})
assert multi.currency_options["eur"].unit_amount == 380 and multi.currency_options["gbp"].unit_amount == 320, multi
for price in (tiered, multi):
    v1.prices.update(price.id, params={"active": False})

listed = v1.products.list(params={"ids": [pid, "missing"], "expand": ["data.default_price"]})
assert [x.id for x in listed.data] == [pid] and listed.data[0].default_price.unit_amount == 1700
active = v1.prices.list(params={"product": pid, "active": True})
assert {x.id for x in active.data} == {yen.id, moved.id}, active

# Pagination through the SDK's auto-paging iterator.
for i in range(12):
    v1.products.create(params={"id": f"py-{run}-{i:02}", "name": f"P{i}"})
seen = [x.id for x in v1.products.list(params={"limit": 5}).auto_paging_iter()]
assert len(seen) == 13 and seen[0] == f"py-{run}-11", seen

# Errors arrive as the SDK's typed exceptions.
try:
    v1.products.retrieve("nope")
    raise AssertionError("expected 404")
except stripe.InvalidRequestError as e:
    assert e.http_status == 404 and e.code == "resource_missing", e
try:
    v1.prices.create(params={"product": pid, "currency": "usd", "unit_amount": -5})
    raise AssertionError("expected 400")
except stripe.InvalidRequestError as e:
    assert e.param == "unit_amount", e
try:
    v1.products.delete(pid)
    raise AssertionError("a product with prices cannot be deleted")
except stripe.InvalidRequestError:
    pass
assert v1.products.delete(f"py-{run}-00").deleted is True

# Idempotency: the same key replays the first response.
a = v1.prices.create(params={"product": pid, "currency": "eur", "unit_amount": 900},
                     options={"idempotency_key": f"idem-{run}"})
b = v1.prices.create(params={"product": pid, "currency": "eur", "unit_amount": 900},
                     options={"idempotency_key": f"idem-{run}"})
assert a.id == b.id
try:
    v1.prices.create(params={"product": pid, "currency": "eur", "unit_amount": 901},
                     options={"idempotency_key": f"idem-{run}"})
    raise AssertionError("expected an idempotency error")
except stripe.IdempotencyError:
    pass

# Webhook endpoints: the secret once, at creation; listed, updated, deleted.
we = v1.webhook_endpoints.create(params={
    "url": "https://relay.example/stripe/webhook", "enabled_events": ["product.updated", "price.created"],
    "metadata": {"catalog_sync_catalog": f"cat_{run}"}, "connect": True,
})
assert we.id.startswith("we_") and we.secret.startswith("whsec_") and we.status == "enabled", we
assert "secret" not in v1.webhook_endpoints.retrieve(we.id), "the secret is shown once"
we = v1.webhook_endpoints.update(we.id, params={"enabled_events": ["*"], "disabled": True})
assert we.enabled_events == ["*"] and we.status == "disabled", we
assert we.id in [e.id for e in v1.webhook_endpoints.list(params={"limit": 100}).data]
try:
    v1.webhook_endpoints.create(params={"url": "ftp://x", "enabled_events": ["product.updated"]})
    raise AssertionError("expected a refused url")
except stripe.InvalidRequestError as e:
    assert e.param == "url", e
try:
    v1.webhook_endpoints.create(params={"url": "https://x.example", "enabled_events": ["product.exploded"]})
    raise AssertionError("expected a refused event type")
except stripe.InvalidRequestError as e:
    assert e.param == "enabled_events[0]", e
deleted = v1.webhook_endpoints.delete(we.id)
assert deleted.deleted is True, deleted

# Events: the writes above, newest first, filtered by type, paged, retrieved.
events = v1.events.list(params={"type": "product.*", "limit": 100})
assert events.data and all(e.type.startswith("product.") for e in events.data), events
assert events.data[0].created >= events.data[-1].created
first = v1.events.list(params={"limit": 1})
assert first.has_more and first.data[0].object == "event"
assert v1.events.retrieve(first.data[0].id).id == first.data[0].id
page = v1.events.list(params={"limit": 1, "starting_after": first.data[0].id})
assert page.data[0].id != first.data[0].id

# Connect: a connected account's objects are its own.
seller = v1.products.create(params={"name": "Seller's hat"}, options={"stripe_account": f"acct_{run}"})
assert v1.products.retrieve(seller.id, options={"stripe_account": f"acct_{run}"}).name == "Seller's hat"
try:
    v1.products.retrieve(seller.id)
    raise AssertionError("a connected account's product is not the platform's")
except stripe.InvalidRequestError as e:
    assert e.http_status == 404, e

# An API version the sandbox does not serve is refused as Stripe refuses it.
try:
    stripe.StripeClient(f"sk_test_py_{run}", base_addresses={"api": base}, max_network_retries=0,
                        stripe_version="2019-2-19").v1.products.list()
    raise AssertionError("expected an invalid API version")
except stripe.InvalidRequestError as e:
    assert "Invalid Stripe API version: 2019-2-19" in e.user_message, e

# Authentication, rate-limit and server errors arrive as their typed exceptions too.
import json
import urllib.request


def admin(method, path, body=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body else None)
    urllib.request.urlopen(req).read()


try:
    stripe.StripeClient("bogus", base_addresses={"api": base}, max_network_retries=0).v1.products.list()
    raise AssertionError("expected 401")
except stripe.AuthenticationError as e:
    assert e.http_status == 401, e
admin("POST", "/_sandbox/faults", {"rate_limit_rate": 1.0})
try:
    v1.products.list()
    raise AssertionError("expected 429")
except stripe.RateLimitError as e:
    assert e.http_status == 429 and e.json_body["error"]["code"] == "rate_limit", e
admin("POST", "/_sandbox/faults", {"error_rate": 1.0, "error_statuses": [500]})
try:
    v1.products.list()
    raise AssertionError("expected 500")
except stripe.APIError as e:
    assert e.http_status == 500, e
admin("DELETE", "/_sandbox/faults")

# A webhook signed by the sandbox verifies with the SDK's own verifier.
import os

event = stripe.Webhook.construct_event(
    os.environ["SANDBOX_SIGNED_PAYLOAD"], os.environ["SANDBOX_SIGNATURE"], os.environ["SANDBOX_WEBHOOK_SECRET"]
)
assert event.type == "product.updated", event

print("stripe-python: all checks passed")
