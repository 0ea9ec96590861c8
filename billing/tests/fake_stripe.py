"""An in-memory Stripe for tests: stripe-python's HTTP client is replaced, so nothing reaches the network.

stripe-python builds its objects from the JSON this fake answers, so the gateway and dj-stripe see
objects of Stripe's real classes and shapes (`stripe.checkout.Session`, `stripe.Subscription`, ...).
Every request is recorded in `calls`; a request the fake does not know answers 404 (resource_missing),
and `fail_next` makes the next requests to a path fail (a timeout, a 500) to test retries; `LOST` makes
one succeed at Stripe and then lose its answer (a timeout after the fact).
Meter events are kept in `meter_events` by identifier; a second event with an identifier Stripe has seen
is refused as Stripe refuses it (400, "An event already exists with identifier ...").
"""

import itertools
import json
import time
from urllib.parse import parse_qsl, urlsplit

import stripe

API_VERSION = "2025-03-31.basil"
LOST = "lost"  # an outcome for fail_next: Stripe does the work, the answer never arrives


class FakeStripe(stripe.HTTPClient):
    name = "fablab-fake"

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, str, dict]] = []
        self.objects: dict[str, dict] = {}  # "<collection>/<id>" -> object
        self.failures: dict[str, list[Exception | int]] = {}
        self._ids = itertools.count(1)
        self.meter_events: dict[str, dict] = {}  # identifier -> event
        self.meter_adjustments: list[dict] = []
        self.add("account", {"id": "acct_fablab", "object": "account", "type": "standard", "country": "GB",
                             "default_currency": "gbp", "email": "lab@fablab.example", "settings": {},
                             "business_profile": {"name": "fablab"}, "charges_enabled": True,
                             "payouts_enabled": True, "details_submitted": True, "metadata": {}},
                 path="account")

    # --- the store ------------------------------------------------------------------------

    def add(self, collection: str, obj: dict, *, path: str | None = None) -> dict:
        obj.setdefault("livemode", False)
        self.objects[path or f"{collection}/{obj['id']}"] = obj
        return obj

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def fail_next(self, path: str, *outcomes: Exception | int) -> None:
        """The next requests to `path` (e.g. "billing/meter_events") fail: an exception or an HTTP status."""
        self.failures.setdefault(path, []).extend(outcomes)

    def requests_to(self, method: str, path: str) -> list[dict]:
        return [params for m, p, params in self.calls if m == method and p == path]

    # --- stripe.HTTPClient ----------------------------------------------------------------

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        path = parts.path.removeprefix("/v1/").rstrip("/")
        params = dict(parse_qsl(post_data.decode() if isinstance(post_data, bytes) else (post_data or "")))
        params.update(parse_qsl(parts.query))
        self.calls.append((method.lower(), path, params))
        pending = self.failures.get(path)
        lost = False
        if pending:
            outcome = pending.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            if outcome == LOST:
                lost = True
            else:
                return self._error(outcome, "api_error", "Injected failure")
        handler = getattr(self, f"_{method.lower()}_{path.split('/')[0].replace('-', '_')}", None)
        status, body = handler(path, params) if handler else self._get_stored(path) if method.lower() == "get" \
            else (404, None)
        if lost:
            raise TimeoutError(f"no answer from {path}")
        if body is None:
            return self._error(404, "invalid_request_error", f"No such object: {path}", code="resource_missing")
        if status >= 400:
            return json.dumps(body), status, {}
        return json.dumps(body), status, {"request-id": f"req_{next(self._ids)}"}

    def request_with_retries(self, method, url, headers, post_data=None, max_network_retries=None, *,
                             _usage=None):
        try:
            return self.request(method, url, headers, post_data)
        except (TimeoutError, ConnectionError) as exc:
            raise stripe.APIConnectionError(f"Fake network error: {exc}") from exc

    def close(self):
        pass

    def _error(self, status, kind, message, code=None):
        return json.dumps({"error": {"type": kind, "message": message, "code": code}}), status, {}

    def _get_stored(self, path):
        if path.endswith("/features"):  # a product's entitlement features: fablab uses none
            return 200, {"object": "list", "url": f"/v1/{path}", "has_more": False, "data": []}
        obj = self.objects.get(path)
        return (200, obj) if obj is not None else (404, None)

    # --- the endpoints fablab calls ---------------------------------------------------------

    def _post_customers(self, path, params):
        if path != "customers":
            return self._get_stored(path)
        customer = {"id": self.new_id("cus"), "object": "customer", "created": int(time.time()),
                    "email": params.get("email"), "name": params.get("name"), "balance": 0, "currency": None,
                    "delinquent": False, "description": None, "discount": None, "invoice_prefix": "FAKE",
                    "invoice_settings": {"default_payment_method": None, "custom_fields": None, "footer": None},
                    "metadata": _nested(params, "metadata"), "preferred_locales": [], "shipping": None,
                    "tax_exempt": "none", "address": None, "phone": None}
        return 200, self.add("customers", customer)

    def _post_checkout(self, path, params):
        session_id = self.new_id("cs_test")
        session = {"id": session_id, "object": "checkout.session", "mode": params.get("mode"),
                   "customer": params.get("customer"), "client_reference_id": params.get("client_reference_id"),
                   "url": f"https://checkout.stripe.com/c/pay/{session_id}", "status": "open",
                   "payment_status": "unpaid", "subscription": None, "success_url": params.get("success_url"),
                   "cancel_url": params.get("cancel_url"), "metadata": _nested(params, "metadata"),
                   "created": int(time.time()), "expires_at": int(time.time()) + 86400}
        return 200, self.add("checkout/sessions", session)

    def _post_billing_portal(self, path, params):
        session = {"id": self.new_id("bps"), "object": "billing_portal.session", "customer": params.get("customer"),
                   "return_url": params.get("return_url"), "created": int(time.time()),
                   "url": f"https://billing.stripe.com/p/session/{self.new_id('test')}"}
        return 200, session

    def _post_billing(self, path, params):
        if path == "billing/meter_events":
            identifier = params.get("identifier") or self.new_id("mev")
            if identifier in self.meter_events:
                return 400, {"error": {"type": "invalid_request_error", "code": None,
                                       "message": f"An event already exists with identifier {identifier}."}}
            event = {"object": "billing.meter_event", "event_name": params.get("event_name"),
                     "identifier": identifier, "payload": _nested(params, "payload"),
                     "timestamp": int(params.get("timestamp") or time.time()), "created": int(time.time())}
            self.meter_events[identifier] = event
            return 200, event
        if path == "billing/meter_event_adjustments":
            adjustment = {"object": "billing.meter_event_adjustment", "event_name": params.get("event_name"),
                          "type": params.get("type"), "status": "pending",
                          "cancel": {"identifier": params.get("cancel[identifier]")}}
            self.meter_adjustments.append(adjustment)
            cancelled = self.meter_events.get(params.get("cancel[identifier]") or "")
            if cancelled is not None:
                cancelled["cancelled"] = True
            return 200, adjustment
        if path == "billing/meters":
            meter = {"id": self.new_id("mtr"), "object": "billing.meter", "event_name": params.get("event_name"),
                     "display_name": params.get("display_name"), "status": "active",
                     "default_aggregation": {"formula": params.get("default_aggregation[formula]")},
                     "customer_mapping": {"type": "by_id", "event_payload_key":
                                          params.get("customer_mapping[event_payload_key]")},
                     "value_settings": {"event_payload_key": params.get("value_settings[event_payload_key]")},
                     "event_time_window": None, "created": int(time.time()), "updated": int(time.time())}
            return 200, self.add("billing/meters", meter)
        return 404, None

    def _get_billing(self, path, params):
        if path == "billing/meters":
            data = [m for key, m in self.objects.items() if key.startswith("billing/meters/")
                    and m.get("status") == params.get("status", m.get("status"))]
            return 200, {"object": "list", "url": "/v1/billing/meters", "has_more": False, "data": data}
        if path.startswith("billing/meters/") and path.endswith("/event_summaries"):
            meter = self.objects.get(path.removesuffix("/event_summaries"))
            if meter is None:
                return 404, None
            start, end = int(params["start_time"]), int(params["end_time"])
            value = sum(float(e["payload"].get("value", 0)) for e in self.meter_events.values()
                        if e["event_name"] == meter["event_name"] and not e.get("cancelled")
                        and e["payload"].get("stripe_customer_id") == params.get("customer")
                        and start <= e["timestamp"] < end)
            summary = {"id": self.new_id("mtrusg"), "object": "billing.meter_event_summary",
                       "aggregated_value": value, "start_time": start, "end_time": end, "livemode": False,
                       "meter": meter["id"]}
            return 200, {"object": "list", "url": f"/v1/{path}", "has_more": False, "data": [summary]}
        return self._get_stored(path)

    def _post_products(self, path, params):
        if path != "products":
            product_obj = self.objects.get(path)
            if product_obj is None:
                return 404, None
            product_obj.update({k: v for k, v in params.items() if k in ("name",)})
            if "active" in params:
                product_obj["active"] = params["active"] == "true"
            product_obj["updated"] = int(time.time())
            return 200, product_obj
        product_id = params.get("id") or self.new_id("prod")
        if f"products/{product_id}" in self.objects:
            return 400, {"error": {"type": "invalid_request_error", "code": "resource_already_exists",
                                   "message": f"Product already exists: {product_id}"}}
        created = product(self, name=params.get("name"), key=_nested(params, "metadata").get("fablab_plan", ""))
        del self.objects[f"products/{created['id']}"]
        created["id"] = product_id
        return 200, self.add("products", created)

    def _post_prices(self, path, params):
        if path != "prices":
            price_obj = self.objects.get(path)
            if price_obj is None:
                return 404, None
            if "active" in params:
                price_obj["active"] = params["active"] == "true"
            return 200, price_obj
        key = params.get("lookup_key")
        holders = [p for k, p in self.objects.items() if k.startswith("prices/") and key and p["lookup_key"] == key]
        if holders and params.get("transfer_lookup_key") != "true":
            return 400, {"error": {"type": "invalid_request_error", "code": "lookup_key_exists",
                                   "message": f"A price with the lookup key {key} already exists."}}
        for holder in holders:
            holder["lookup_key"] = None
        created = price(self, product_id=params["product"], lookup_key=key, unit_amount=int(params["unit_amount"]),
                        metered=params.get("recurring[usage_type]") == "metered", meter=params.get("recurring[meter]"))
        created["currency"] = params.get("currency", "gbp")
        return 200, created

    def _delete_subscriptions(self, path, params):
        """Cancel a subscription at once (DELETE /v1/subscriptions/<id>), as Stripe does."""
        obj = self.objects.get(path)
        if obj is None:
            return 404, None  # answered as resource_missing
        obj.update(status="canceled", canceled_at=int(time.time()), ended_at=int(time.time()))
        return 200, obj

    def _get_prices(self, path, params):
        if path != "prices":
            return self._get_stored(path)
        keys = {v for k, v in params.items() if k.startswith("lookup_keys")}
        data = [p for key, p in self.objects.items() if key.startswith("prices/")
                and (not keys or p.get("lookup_key") in keys) and p.get("active", True)]
        return 200, {"object": "list", "url": "/v1/prices", "has_more": False, "data": data}


def _nested(params: dict, name: str) -> dict:
    """`metadata[organization]=3` form fields back into {"organization": "3"}."""
    prefix = f"{name}["
    return {k[len(prefix):-1]: v for k, v in params.items() if k.startswith(prefix) and k.endswith("]")}


# --- objects in Stripe's shapes (API 2025-03-31: the billing period is on the subscription items) ------


def product(fake: FakeStripe, *, name: str, key: str) -> dict:
    return fake.add("products", {"id": fake.new_id("prod"), "object": "product", "name": name, "active": True,
                                 "created": int(time.time()), "updated": int(time.time()), "description": None,
                                 "images": [], "metadata": {"fablab_plan": key}, "type": "service",
                                 "default_price": None, "marketing_features": [], "package_dimensions": None,
                                 "shippable": None, "statement_descriptor": None, "tax_code": None,
                                 "unit_label": None, "url": None})


def price(fake: FakeStripe, *, product_id: str, lookup_key: str, unit_amount: int, metered: bool = False,
          meter: str | None = None) -> dict:
    recurring = {"interval": "month", "interval_count": 1, "trial_period_days": None,
                 "usage_type": "metered" if metered else "licensed", "meter": meter, "aggregate_usage": None}
    return fake.add("prices", {"id": fake.new_id("price"), "object": "price", "active": True, "currency": "gbp",
                               "product": product_id, "lookup_key": lookup_key, "unit_amount": unit_amount,
                               "unit_amount_decimal": str(unit_amount), "type": "recurring",
                               "recurring": recurring, "billing_scheme": "per_unit", "created": int(time.time()),
                               "metadata": {}, "nickname": None, "tax_behavior": "unspecified",
                               "tiers_mode": None, "transform_quantity": None, "custom_unit_amount": None})


def subscription(fake: FakeStripe, *, customer_id: str, prices: list[dict], status: str = "active",
                 period_start: int, period_end: int, subscription_id: str | None = None) -> dict:
    """A subscription as Stripe sends it: `current_period_*` only on the items (no longer on the subscription)."""
    sub_id = subscription_id or fake.new_id("sub")
    items = [{"id": fake.new_id("si"), "object": "subscription_item", "created": period_start,
              "current_period_start": period_start, "current_period_end": period_end, "metadata": {},
              "price": p, "quantity": None if p["recurring"]["usage_type"] == "metered" else 1,
              "subscription": sub_id, "discounts": [], "tax_rates": []} for p in prices]
    return fake.add("subscriptions", {
        "id": sub_id, "object": "subscription", "customer": customer_id, "status": status,
        "created": period_start, "start_date": period_start, "billing_cycle_anchor": period_start,
        "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None, "ended_at": None,
        "collection_method": "charge_automatically", "currency": "gbp", "days_until_due": None,
        "default_payment_method": None, "default_source": None, "description": None, "discounts": [],
        "items": {"object": "list", "data": items, "has_more": False,
                  "url": f"/v1/subscription_items?subscription={sub_id}"},
        "latest_invoice": None, "metadata": {}, "pending_setup_intent": None, "pending_update": None,
        "schedule": None, "trial_end": None, "trial_start": None, "application_fee_percent": None,
        "automatic_tax": {"enabled": False}, "billing_thresholds": None, "cancellation_details": None,
    })


def invoice(fake: FakeStripe, *, customer_id: str, subscription_id: str | None = None, status: str = "paid",
            total: int = 2900, number: str | None = None, created: int | None = None) -> dict:
    """An invoice as Stripe sends it (API 2025-03-31: its subscription under `parent`)."""
    invoice_id = fake.new_id("in")
    created = created or int(time.time())
    parent = ({"type": "subscription_details", "subscription_details": {"subscription": subscription_id}}
              if subscription_id else None)
    return fake.add("invoices", {
        "id": invoice_id, "object": "invoice", "customer": customer_id, "status": status, "parent": parent,
        "hosted_invoice_url": None if status == "draft" else f"https://invoice.stripe.com/i/acct_fablab/{invoice_id}",
        "invoice_pdf": None if status == "draft" else f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
        "number": None if status == "draft" else (number or f"FAKE-{invoice_id[-4:]}"), "total": total,
        "subtotal": total, "amount_due": total, "amount_paid": total if status == "paid" else 0,
        "amount_remaining": 0 if status == "paid" else total, "currency": "gbp", "created": created,
        "lines": {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
        "period_start": created - 30 * 86400, "period_end": created, "metadata": {}, "attempt_count": 1,
        "billing_reason": "subscription_cycle", "collection_method": "charge_automatically", "livemode": False})


def event(fake: FakeStripe, kind: str, obj: dict, *, created: int | None = None, event_id: str | None = None) -> dict:
    return {"id": event_id or fake.new_id("evt"), "object": "event", "type": kind, "livemode": False,
            "api_version": API_VERSION, "created": created or int(time.time()), "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "data": {"object": json.loads(json.dumps(obj))}}
