"""Managing webhook endpoints over HTTP: register (the secret shown once), list, delete,
rotate the secret, every validation and SSRF refusal, and the three tenants' scopes."""
from __future__ import annotations

import base64

import pytest

from apps.webhooks import targets
from tests.conftest import auth

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/banatie"


@pytest.fixture(autouse=True)
def public_dns(monkeypatch, settings):  # type: ignore[no-untyped-def]
    """Private targets refused (the production default); names resolve as this table says,
    without the network."""
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    table = {"hooks.example.com": ["93.184.215.14"], "localhost": ["127.0.0.1", "::1"],
             "rebind.example.com": ["93.184.215.14", "10.1.2.3"]}

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]

    monkeypatch.setattr(targets, "resolve", resolve)
    return table


def create(api, key: str, **body):  # type: ignore[no-untyped-def]
    return api.post("/api/webhooks", {"url": HOOK, **body}, format="json", **auth(key))


def test_webhook_create_answers_the_endpoint_and_its_secret_once(api, tenants):
    r = create(api, tenants.a, description="orders")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert body["success"] is True
    webhook = body["webhook"]
    assert set(webhook) == {"id", "url", "events", "description", "isActive", "disabledReason", "createdAt"}
    assert webhook["url"] == HOOK and webhook["description"] == "orders" and webhook["isActive"] is True
    assert webhook["events"] == ["job.succeeded", "job.failed", "job.canceled"]  # the default: how jobs end
    assert body["secret"].startswith("whsec_") and len(base64.b64decode(body["secret"][6:])) == 32
    listed = api.get("/api/webhooks", **auth(tenants.a)).json()
    assert listed == {"success": True, "webhooks": [webhook]}
    assert body["secret"] not in api.get("/api/webhooks", **auth(tenants.a)).content.decode()


def test_webhook_create_takes_the_events_it_is_given_once_each(api, tenants):
    r = create(api, tenants.a, events=["job.started", "job.failed", "job.started"])
    assert r.status_code == 201 and r.json()["webhook"]["events"] == ["job.started", "job.failed"]


@pytest.mark.parametrize("body,field,words", [
    ({"events": ["job.done"]}, "events[0]", "use one of: job.started, job.succeeded, job.failed, job.canceled"),
    ({"events": []}, "events", "may not be empty"),
    ({"events": "job.failed"}, "events", "list"),
    ({"url": 42}, "url", "Expected a string"),
    ({"url": None}, "url", "null"),
    ({"description": "x" * 501}, "description", "500"),
    ({"secret": "whsec_mine"}, "secret", "read-only"),
    ({"evnets": ["job.failed"]}, "evnets", "Did you mean 'events'?"),
])
def test_webhook_create_names_each_invalid_field(api, tenants, body, field, words):
    r = create(api, tenants.a, **body)
    assert r.status_code == 400, r.json()
    error = r.json()
    assert error["code"] == "validation_failed" and error["field"] == field
    assert words in " ".join(error["details"][field])


def test_webhook_create_needs_a_url(api, tenants):
    r = api.post("/api/webhooks", {}, format="json", **auth(tenants.a))
    assert r.status_code == 400 and r.json()["details"] == {"url": ["This field is required."]}


@pytest.mark.parametrize("url,reason,address_class", [
    ("https://127.0.0.1/hook", "address", "loopback"),
    ("https://10.0.0.1/hook", "address", "private"),
    ("https://169.254.169.254/latest/meta-data", "address", "link-local"),
    ("https://[::1]/hook", "address", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "address", "IPv4-mapped loopback"),
    ("https://0.0.0.0/hook", "address", "unspecified"),
    ("https://224.0.0.1/hook", "address", "multicast"),
    ("https://240.0.0.1/hook", "address", "reserved"),
    ("https://100.64.0.1/hook", "address", "not globally routable"),
    ("https://localhost:8443/hook", "address", "loopback"),
    ("https://rebind.example.com/hook", "address", "private"),  # one bad address is enough
    ("http://hooks.example.com/hook", "scheme", None),
    ("ftp://hooks.example.com/hook", "scheme", None),
    ("hooks.example.com/hook", "scheme", None),
    ("https://nowhere.invalid/hook", "unresolvable", None),
    ("https://user:pw@hooks.example.com/hook", "credentials", None),
])
def test_webhook_create_refuses_urls_that_could_reach_internal_services(api, tenants, url, reason, address_class):
    r = create(api, tenants.a, url=url)
    assert r.status_code == 400, r.json()
    error = r.json()
    assert error["code"] == "webhook_url_not_allowed" and error["field"] == "url"
    assert error["details"]["reason"] == reason, error
    if address_class:
        assert error["details"]["addressClass"] == address_class
        assert f"is a {address_class} address" in error["message"]
    if url.startswith("https://localhost"):
        assert "resolves to 127.0.0.1" in error["message"]
    if reason == "scheme":
        assert "https://" in error["message"]
    assert api.get("/api/webhooks", **auth(tenants.a)).json()["webhooks"] == []


def test_webhook_create_allows_http_and_private_targets_when_the_operator_says_so(api, tenants, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "https://10.0.0.1/hook"):
        assert create(api, tenants.a, url=url).status_code == 201, url
    assert create(api, tenants.a, url="ftp://127.0.0.1/").json()["details"]["reason"] == "scheme"


def test_webhooks_are_scoped_to_the_project_of_the_key(api, tenants):
    a = create(api, tenants.a).json()["webhook"]
    b = create(api, tenants.b).json()["webhook"]
    mine = create(api, tenants.master).json()["webhook"]  # the master keys' own scope
    for_b = create(api, tenants.master, projectId="project-b").json()["webhook"]
    ids = lambda key, q="": [w["id"] for w in api.get(f"/api/webhooks{q}", **auth(key)).json()["webhooks"]]  # noqa: E731
    assert ids(tenants.a) == [a["id"]]
    assert ids(tenants.b) == [for_b["id"], b["id"]]
    assert ids(tenants.master) == [mine["id"]]
    assert ids(tenants.master, "?projectId=project-a") == [a["id"]]
    assert ids(tenants.a, "?projectId=project-a") == [a["id"]]
    # Another project's endpoint is a 404 for every route, whatever its id.
    for path in (f"/api/webhooks/{b['id']}", f"/api/webhooks/{b['id']}/rotate-secret",
                 f"/api/webhooks/{b['id']}/deliveries"):
        method = api.delete if path.endswith(b["id"]) else (api.post if "rotate" in path else api.get)
        r = method(path, **auth(tenants.a))
        assert r.status_code == 404 and r.json()["code"] == "webhook_not_found", path
    assert api.delete(f"/api/webhooks/{a['id']}", **auth(tenants.master)).status_code == 404
    assert ids(tenants.b) == [for_b["id"], b["id"]]


def test_a_project_key_may_not_name_another_project(api, tenants):
    r = create(api, tenants.a, projectId="project-b")
    assert r.status_code == 403 and r.json()["code"] == "master_key_required"
    r = api.get("/api/webhooks?projectId=project-b", **auth(tenants.a))
    assert r.status_code == 403 and r.json()["code"] == "master_key_required"


def test_webhook_delete_removes_it(api, tenants):
    webhook = create(api, tenants.a).json()["webhook"]
    r = api.delete(f"/api/webhooks/{webhook['id']}", **auth(tenants.a))
    assert r.status_code == 200 and r.json() == {"success": True, "webhook": webhook}
    assert api.get("/api/webhooks", **auth(tenants.a)).json()["webhooks"] == []
    again = api.delete(f"/api/webhooks/{webhook['id']}", **auth(tenants.a))
    assert again.status_code == 404 and again.json()["code"] == "webhook_not_found"
    assert api.delete("/api/webhooks/not-a-uuid", **auth(tenants.a)).status_code == 404


def test_webhook_rotate_secret_answers_a_new_secret_and_when_the_old_one_stops(api, tenants):
    created = create(api, tenants.a).json()
    r = api.post(f"/api/webhooks/{created['webhook']['id']}/rotate-secret", **auth(tenants.a))
    assert r.status_code == 200, r.json()
    body = r.json()
    assert body["secret"].startswith("whsec_") and body["secret"] != created["secret"]
    assert body["webhook"] == created["webhook"] and body["previousSecretExpiresAt"].endswith("Z")


def test_webhook_routes_need_a_key(api, tenants):
    for r in (api.get("/api/webhooks"), api.post("/api/webhooks", {"url": HOOK}, format="json")):
        assert r.status_code == 401 and r.json()["code"] == "api_key_missing"


def test_the_admin_never_shows_a_secret(api, tenants, admin_client):
    created = create(api, tenants.a).json()
    for page in ("/admin/webhooks/webhookendpoint/", f"/admin/webhooks/webhookendpoint/{created['webhook']['id']}/change/"):
        r = admin_client.get(page)
        assert r.status_code == 200 and created["secret"] not in r.content.decode(), page
        assert "whsec_" not in r.content.decode()
