"""API keys: bootstrap, admin routes, authentication errors, /api/me, admin UI, command."""
from __future__ import annotations

import io
import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from apps.keys.models import ApiKey
from apps.keys.services import KEY_PATTERN, hash_key, key_create
from tests.conftest import auth

pytestmark = pytest.mark.django_db


# --- bootstrap -------------------------------------------------------------------------

def test_bootstrap_creates_master_key_once(api):
    r = api.post("/api/bootstrap/initial-key")
    assert r.status_code == 201
    body = r.json()
    assert KEY_PATTERN.match(body["apiKey"])
    assert body["type"] == "master" and body["expiresAt"] is None and body["name"] == "Initial Master Key"
    assert "You will not see it again" in body["message"]
    stored = ApiKey.objects.get()
    assert stored.hash == hash_key(body["apiKey"]) and body["apiKey"] not in (stored.hash, stored.prefix)

    again = api.post("/api/bootstrap/initial-key")
    assert again.status_code == 403
    assert again.json()["error"] == "Bootstrap not allowed"
    assert again.json()["code"] == "bootstrap_not_allowed"


def test_bootstrap_stays_closed_after_all_keys_are_revoked(api):
    api.post("/api/bootstrap/initial-key")
    ApiKey.objects.update(revoked_at=timezone.now())
    assert api.post("/api/bootstrap/initial-key").status_code == 403
    ApiKey.objects.all().delete()  # even with no rows at all
    assert api.post("/api/bootstrap/initial-key").status_code == 403


def test_bootstrap_refused_when_keys_exist(api, tenants):
    assert api.post("/api/bootstrap/initial-key").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_concurrent_bootstraps_give_exactly_one_key():
    from rest_framework.test import APIClient

    results: list[int] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        barrier.wait()
        try:
            results.append(APIClient().post("/api/bootstrap/initial-key").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [201, 403, 403, 403, 403, 403], results
    assert ApiKey.objects.count() == 1


# --- admin routes ----------------------------------------------------------------------

def test_master_creates_project_key_with_documented_shape(api, tenants):
    r = api.post(
        "/api/admin/keys", {"type": "project", "projectId": "my-project", "name": "My Project Key"},
        format="json", **auth(tenants.master),
    )
    assert r.status_code == 201
    body = r.json()
    assert KEY_PATTERN.match(body["apiKey"])
    meta = body["metadata"]
    assert meta["type"] == "project" and meta["projectId"] == "my-project" and meta["name"] == "My Project Key"
    assert meta["scopes"] == ["generate", "read"]
    assert meta["createdBy"] == str(tenants.master_key.id)
    created = ApiKey.objects.get(pk=meta["id"])
    assert abs(created.expires_at - (timezone.now() + timedelta(days=90))) < timedelta(minutes=1)
    assert body["apiKey"] not in str(api.get("/api/admin/keys", **auth(tenants.master)).json())


def test_project_key_honours_expires_in_days(api, tenants):
    r = api.post("/api/admin/keys", {"type": "project", "projectId": "p", "expiresInDays": 7}, format="json",
                 **auth(tenants.master))
    created = ApiKey.objects.get(pk=r.json()["metadata"]["id"])
    assert abs(created.expires_at - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)


def test_master_key_may_be_created_without_expiry(api, tenants):
    r = api.post("/api/admin/keys", {"type": "master", "name": "ops"}, format="json", **auth(tenants.master))
    assert r.status_code == 201 and r.json()["metadata"]["expiresAt"] is None
    assert r.json()["metadata"]["scopes"] == ["*"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"type": "project"}, "projectId"),
        ({"type": "project", "projectId": "p", "expiresInDays": 0}, "expiresInDays"),
        ({"type": "project", "projectId": "p", "expiresInDays": 100000}, "expiresInDays"),
        ({"type": "project", "projectId": "p", "expiresInDays": None}, "expiresInDays"),
        ({"type": "project", "projectId": "p", "expiresInDays": "7"}, "expiresInDays"),
        ({"type": "admin", "projectId": "p"}, "type"),
        ({"type": "project", "projectId": "../etc"}, "projectId"),
        ({"type": "project", "projectId": "p", "scopes": ["*"]}, "scopes"),
        ({"type": "project", "projectId": "p", "project_id": "p"}, "project_id"),
        ({"type": "master", "projectId": "p"}, "projectId"),
    ],
)
def test_key_create_rejects_bad_input_and_creates_nothing(api, tenants, body, field):
    before = ApiKey.objects.count()
    r = api.post("/api/admin/keys", body, format="json", **auth(tenants.master))
    assert r.status_code == 400, r.json()
    assert field in r.json()["details"], r.json()
    assert r.json()["code"] == "validation_failed"
    assert ApiKey.objects.count() == before


def test_unknown_field_suggests_the_known_one(api, tenants):
    r = api.post("/api/admin/keys", {"type": "project", "project_id": "p"}, format="json", **auth(tenants.master))
    assert "Did you mean 'projectId'?" in r.json()["details"]["project_id"][0]


def test_list_keys_never_includes_secrets(api, tenants):
    r = api.get("/api/admin/keys", **auth(tenants.master))
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3 and len(body["keys"]) == 3
    text = r.content.decode()
    for key in (tenants.master, tenants.a, tenants.b):
        assert key not in text and key[12:] not in text
    assert all("hash" not in k and "apiKey" not in k for k in body["keys"])
    first = body["keys"][0]
    assert {"id", "type", "projectId", "name", "scopes", "isActive", "createdAt", "expiresAt", "lastUsedAt",
            "createdBy"} <= set(first)


def test_revoke_marks_key_revoked_without_deleting(api, tenants):
    r = api.delete(f"/api/admin/keys/{tenants.a_key.id}", **auth(tenants.master))
    assert r.status_code == 200
    assert r.json()["message"] == "API key revoked successfully" and r.json()["keyId"] == str(tenants.a_key.id)
    tenants.a_key.refresh_from_db()
    assert tenants.a_key.revoked_at is not None
    assert api.get("/api/me", **auth(tenants.a)).json()["code"] == "api_key_revoked"


@pytest.mark.parametrize("key_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_revoke_unknown_or_malformed_id_is_json_404(api, tenants, key_id):
    r = api.delete(f"/api/admin/keys/{key_id}", **auth(tenants.master))
    assert r.status_code == 404 and r.json()["code"] == "key_not_found"


@pytest.mark.parametrize(
    "method,path",
    [("get", "/api/admin/keys"), ("post", "/api/admin/keys"), ("delete", "/api/admin/keys/{id}")],
)
def test_project_key_is_refused_on_every_admin_route(api, tenants, method, path):
    r = getattr(api, method)(path.format(id=tenants.b_key.id), {"type": "master"}, format="json", **auth(tenants.a))
    assert r.status_code == 403
    body = r.json()
    assert body["code"] == "master_key_required" and body["error"] == "Master key required"
    assert "project key" in body["message"]
    tenants.b_key.refresh_from_db()
    assert tenants.b_key.revoked_at is None and ApiKey.objects.count() == 3


# --- authentication --------------------------------------------------------------------

def test_missing_key_is_401_with_hint(api):
    r = api.get("/api/me")
    assert r.status_code == 401
    body = r.json()
    assert body["code"] == "api_key_missing" and body["error"] == "Missing API key"
    assert "X-API-Key" in body["hint"]
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_x_api_key_and_bearer_both_work(api, tenants):
    assert api.get("/api/me", HTTP_X_API_KEY=tenants.a).status_code == 200
    assert api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {tenants.a}").status_code == 200
    assert api.get("/api/me", HTTP_AUTHORIZATION=f"bearer {tenants.a}").status_code == 200


MALFORMED = {
    "bearer_in_x_api_key": ("X-API-Key", "Bearer {k}", "Bearer"),
    "single_quotes": ("X-API-Key", "'{k}'", "quotes"),
    "double_quotes": ("X-API-Key", '"{k}"', "quotes"),
    "inner_space": ("X-API-Key", "{k5} {krest}", "whitespace"),
    "wrong_prefix": ("X-API-Key", "sk-{k}", "bnt_"),
    "truncated": ("X-API-Key", "{k5}", "characters"),
    "empty": ("X-API-Key", "", "empty"),
    "bare_key_in_authorization": ("Authorization", "{k}", "Bearer"),
    "basic_scheme": ("Authorization", "Basic dXNlcjpwYXNz", "Bearer"),
    "quoted_bearer_token": ("Authorization", "Bearer '{k}'", "quotes"),
    "quoted_authorization": ("Authorization", "'{k}'", "Bearer"),
    "other_scheme_holding_key": ("Authorization", "Key={k}", "Bearer"),
    "token_scheme": ("Authorization", "Token {k}", "Bearer"),
}


@pytest.mark.parametrize("variant", MALFORMED, ids=list(MALFORMED))
def test_malformed_key_is_named(api, tenants, variant):
    header, template, needle = MALFORMED[variant]
    k = tenants.a
    value = template.format(k=k, k5=k[:20], krest=k[20:])
    meta = {"HTTP_" + header.upper().replace("-", "_"): value}
    r = api.get("/api/me", **meta)
    assert r.status_code == 401
    body = r.json()
    assert body["code"] == "api_key_malformed" and body["error"] == "Invalid API key"
    assert needle.lower() in (body["message"] + body["hint"]).lower()
    assert k not in r.content.decode() and k[4:12] not in r.content.decode()


def test_unknown_key_is_invalid(api, tenants):
    forged = tenants.a[:-4] + ("AAAA" if not tenants.a.endswith("AAAA") else "BBBB")
    r = api.get("/api/me", **auth(forged))
    assert r.status_code == 401 and r.json()["code"] == "api_key_invalid"
    r = api.get("/api/me", **auth("bnt_zzzzzzzz" + "A" * 43))
    assert r.status_code == 401 and r.json()["code"] == "api_key_invalid"


def test_expired_key_is_reported_only_with_the_right_secret(api, tenants):
    ApiKey.objects.filter(pk=tenants.a_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/api/me", **auth(tenants.a)).json()["code"] == "api_key_expired"
    wrong_secret = tenants.a[:12] + "x" * 43
    assert api.get("/api/me", **auth(wrong_secret)).json()["code"] == "api_key_invalid"


def test_revoked_key_is_reported_only_with_the_right_secret(api, tenants):
    ApiKey.objects.filter(pk=tenants.a_key.pk).update(revoked_at=timezone.now())
    assert api.get("/api/me", **auth(tenants.a)).json()["code"] == "api_key_revoked"
    wrong_secret = tenants.a[:12] + "x" * 43
    assert api.get("/api/me", **auth(wrong_secret)).json()["code"] == "api_key_invalid"


# --- /api/me ---------------------------------------------------------------------------

def test_me_describes_the_key_and_its_budget(api, tenants, settings):
    settings.BANATIE_RATE_LIMIT = "5/m"
    r = api.get("/api/me", **auth(tenants.a))
    assert r.status_code == 200
    body = r.json()
    assert body["key"]["id"] == str(tenants.a_key.id)
    assert body["key"]["type"] == "project" and body["key"]["projectId"] == "project-a"
    assert body["key"]["expiresAt"] and body["key"]["createdAt"]
    assert body["rateLimit"]["limit"] == 5 and body["rateLimit"]["remaining"] == 5
    assert tenants.a not in r.content.decode() and tenants.a_key.hash not in r.content.decode()
    tenants.a_key.refresh_from_db()
    assert tenants.a_key.last_used_at is not None


def test_me_lists_exactly_the_routes_that_count_against_the_budget(api, tenants):
    applies = api.get("/api/me", **auth(tenants.a)).json()["rateLimit"]["appliesTo"]
    assert applies == ["POST /api/generate", "POST /api/text-to-image", "POST /api/enhance",
                       "POST /v1/images/generations", "POST /v1/images/edits"]
    schema = api.get("/api/schema/").json()
    limited = {f"{method.upper()} {path}" for path, item in schema["paths"].items() for method, op in item.items()
               if any("X-RateLimit-Limit" in r.get("headers", {}) for r in op["responses"].values())}
    assert limited == set(applies)


# --- operators -------------------------------------------------------------------------

def test_create_master_key_command_prints_a_working_key_once(api):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_master_key", stdout=out, stderr=err)
    plaintext = out.getvalue().strip()
    assert KEY_PATTERN.match(plaintext)
    assert api.get("/api/admin/keys", **auth(plaintext)).status_code == 200


def test_admin_create_shows_key_once_and_list_hides_it(client, admin_user):
    client.force_login(admin_user)
    r = client.post("/admin/keys/apikey/add/", {"key_type": "project", "project_id": "adm", "name": "n"})
    assert r.status_code == 200
    plaintext = KEY_PATTERN.search(r.content.decode().split('id="api-key">')[1].split("<")[0])
    assert plaintext
    listing = client.get("/admin/keys/apikey/").content.decode()
    assert plaintext.group(0) not in listing and f"bnt_{plaintext.group(1)}" in listing
    key = ApiKey.objects.get(prefix=plaintext.group(1))
    detail = client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
    assert plaintext.group(0) not in detail and key.hash not in detail


def test_admin_revoke_action(client, admin_user, tenants):
    client.force_login(admin_user)
    client.post("/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [str(tenants.a_key.pk)]})
    tenants.a_key.refresh_from_db()
    assert tenants.a_key.revoked_at is not None


def test_no_key_material_is_ever_logged(api, caplog, tenants):
    caplog.set_level(logging.DEBUG)
    boot = ApiKey.objects.all().delete()  # noqa: F841 - start from an empty installation
    from apps.keys.models import BootstrapState

    BootstrapState.objects.all().delete()
    master = api.post("/api/bootstrap/initial-key").json()["apiKey"]
    project = api.post("/api/admin/keys", {"type": "project", "projectId": "p"}, format="json",
                       **auth(master)).json()["apiKey"]
    api.get("/api/me", **auth(project))
    api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {project}")
    api.get("/api/me", **auth(f"Bearer {project}"))
    api.get("/api/me", **auth(project[:-1] + "Q"))
    api.get("/api/me", **auth(f"'{project}'"))
    minted = key_create(key_type="project", project_id="q")
    for secret in (master, project, minted.plaintext, master[12:], project[12:]):
        assert secret not in caplog.text


def test_last_active_master_key_cannot_be_revoked(api, tenants):
    r = api.delete(f"/api/admin/keys/{tenants.master_key.id}", **auth(tenants.master))
    assert r.status_code == 409 and r.json()["code"] == "last_master_key"
    other = api.post("/api/admin/keys", {"type": "master"}, format="json", **auth(tenants.master)).json()
    r = api.delete(f"/api/admin/keys/{tenants.master_key.id}", **auth(tenants.master))
    assert r.status_code == 200
    assert api.get("/api/admin/keys", **auth(other["apiKey"])).status_code == 200


@pytest.fixture
def limited_staff(db):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_apikey"))
    return user


def test_staff_without_add_permission_cannot_mint_keys(client, limited_staff):
    client.force_login(limited_staff)
    r = client.post("/admin/keys/apikey/add/", {"key_type": "master"})
    assert r.status_code == 403 and r["Content-Type"] == "application/json"
    assert ApiKey.objects.count() == 0


def test_staff_without_change_permission_cannot_revoke(client, limited_staff, tenants):
    client.force_login(limited_staff)
    client.post("/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [str(tenants.a_key.pk)]})
    tenants.a_key.refresh_from_db()
    assert tenants.a_key.revoked_at is None


def test_admin_unknown_page_is_an_html_404_like_the_rest_of_the_admin_not_500(client, admin_user):
    client.force_login(admin_user)
    r = client.get("/admin/nonexistent-app/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
    assert client.get("/api/nonexistent").json()["code"] == "route_not_found"  # the API stays JSON


def test_admin_key_page_has_a_revoke_button_that_revokes(client, admin_user, tenants):
    client.force_login(admin_user)
    page = client.get(f"/admin/keys/apikey/{tenants.a_key.pk}/change/").content.decode()
    assert f'action="/admin/keys/apikey/{tenants.a_key.pk}/revoke/"' in page and "Revoke this key" in page
    r = client.post(f"/admin/keys/apikey/{tenants.a_key.pk}/revoke/")
    assert r.status_code == 302
    tenants.a_key.refresh_from_db()
    assert tenants.a_key.revoked_at is not None
    page = client.get(f"/admin/keys/apikey/{tenants.a_key.pk}/change/").content.decode()
    assert "Revoke this key" not in page and "revoked" in page.lower()


def test_admin_revoke_button_needs_change_permission_and_a_post(client, limited_staff, tenants):
    client.force_login(limited_staff)
    assert client.post(f"/admin/keys/apikey/{tenants.a_key.pk}/revoke/").status_code == 403
    tenants.a_key.refresh_from_db()
    assert tenants.a_key.revoked_at is None


def test_me_still_answers_when_the_counter_store_is_down(api, tenants, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    r = api.get("/api/me", **auth(tenants.a))
    assert r.status_code == 200
    assert r.json()["rateLimit"] is None and "unreachable" in r.json()["rateLimitError"]


def test_bearer_scheme_separated_by_a_tab_is_accepted(api, tenants):
    assert api.get("/api/me", HTTP_AUTHORIZATION=f"Bearer\t{tenants.a}").status_code == 200
    r = api.get("/api/me", HTTP_AUTHORIZATION=f"Token\t{tenants.a}")
    assert r.status_code == 401 and "without the 'Bearer ' scheme" in r.json()["message"]


@pytest.mark.parametrize("header", ["HTTP_X_API_KEY", "HTTP_AUTHORIZATION"])
def test_an_unexpanded_shell_variable_is_named_as_such(api, db, header):
    value = "$NANO_BANANA_KEY" if header == "HTTP_X_API_KEY" else "Bearer $NANO_BANANA_KEY"
    r = api.get("/api/me", **{header: value})
    assert r.status_code == 401 and r.json()["code"] == "api_key_malformed"
    assert "did not expand" in r.json()["message"] and "export NANO_BANANA_KEY=" in r.json()["hint"]


# --- the key cache: one copy per process, at most KEY_CACHE_SECONDS old -----------------

@pytest.fixture
def key_clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The clock the key cache reads (time.monotonic in apps.keys.cache)."""
    import types

    import apps.keys.cache as cache

    clock = types.SimpleNamespace(now=1_000.0)
    monkeypatch.setattr(cache, "time", types.SimpleNamespace(monotonic=lambda: clock.now))
    return clock


def test_a_key_used_again_is_not_read_again_until_its_copy_is_a_second_old(
        api, tenants, key_clock, django_assert_num_queries):
    assert api.get("/api/me", **auth(tenants.a)).status_code == 200  # read, and last use recorded
    for _ in range(3):
        with django_assert_num_queries(0):
            assert api.get("/api/me", **auth(tenants.a)).status_code == 200
    key_clock.now += 1
    # The copy is read again; the last use was recorded less than a minute ago: no UPDATE.
    with django_assert_num_queries(1):
        assert api.get("/api/me", **auth(tenants.a)).status_code == 200


def test_a_key_revoked_through_the_api_is_refused_at_once_by_the_same_process(api, tenants):
    assert api.get("/api/me", **auth(tenants.a)).status_code == 200
    assert api.delete(f"/api/admin/keys/{tenants.a_key.id}", **auth(tenants.master)).status_code == 200
    r = api.get("/api/me", **auth(tenants.a))
    assert r.status_code == 401 and r.json()["code"] == "api_key_revoked"


def test_a_key_revoked_or_deleted_by_another_process_is_refused_once_the_copy_is_a_second_old(
        api, tenants, key_clock):
    assert [api.get("/api/me", **auth(k)).status_code for k in (tenants.a, tenants.b)] == [200, 200]
    # What another process's revocation, or an operator's DELETE, leaves in the database:
    ApiKey.objects.filter(pk=tenants.a_key.pk).update(revoked_at=timezone.now())
    ApiKey.objects.filter(pk=tenants.b_key.pk).delete()
    key_clock.now += 0.9
    assert [api.get("/api/me", **auth(k)).status_code for k in (tenants.a, tenants.b)] == [200, 200]
    key_clock.now += 0.1
    codes = [api.get("/api/me", **auth(k)).json()["code"] for k in (tenants.a, tenants.b)]
    assert codes == ["api_key_revoked", "api_key_invalid"]


def test_no_key_is_cached_when_the_cache_time_is_zero(api, tenants, settings, django_assert_num_queries):
    settings.KEY_CACHE_SECONDS = 0
    api.get("/api/me", **auth(tenants.a))
    with django_assert_num_queries(1):
        assert api.get("/api/me", **auth(tenants.a)).status_code == 200


def test_the_key_cache_is_bounded_and_drops_the_least_recently_used_copy_first():
    from apps.keys.cache import KeyCache

    cache = KeyCache(max_entries=2)
    loaded: list[str] = []

    def use(digest: str) -> None:
        cache.get_or_load(digest, max_age=1.0, load=lambda: loaded.append(digest) or ApiKey(prefix=digest))

    for digest in ("a", "b", "a", "c", "b"):
        use(digest)
    assert loaded == ["a", "b", "c", "b"]  # "a" was used again, so "c" pushed out "b"


def _me(conn, key: str) -> tuple[int, str | None]:  # type: ignore[no-untyped-def]
    conn.request("GET", "/api/me", headers={"X-API-Key": key})
    response = conn.getresponse()
    body = json.loads(response.read())
    return response.status, body.get("code")


def _connections_to_every_web_process(stack, key: str, processes: int) -> list:  # type: ignore[no-untyped-def]
    """Keep-alive connections until each gunicorn worker process holds one that has served
    ``key`` (so each has a copy cached). Which process accepts a connection is the
    kernel's choice; psutil tells which one did."""
    import http.client

    import psutil

    workers = psutil.Process(stack.procs["web"][0].pid).children()
    assert len(workers) == processes
    by_worker: dict[int, http.client.HTTPConnection] = {}
    opened = []
    for _ in range(100):
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
        opened.append(conn)  # kept open, so the next connection may well go to another process
        assert _me(conn, key) == (200, None)
        port = conn.sock.getsockname()[1]
        owner = next(w.pid for w in workers
                     if any(c.raddr and c.raddr.port == port for c in w.net_connections("tcp")))
        by_worker.setdefault(owner, conn)
        if len(by_worker) == processes:
            break
    assert len(by_worker) == processes, f"100 connections reached only {len(by_worker)} of {processes} processes"
    return list(by_worker.values())


@pytest.mark.slow
def test_a_revoked_key_is_refused_by_every_web_process_within_a_second(stack_factory, tenants):
    stack = stack_factory(WEB_CONCURRENCY="2")
    status, created = stack.http("POST", "/api/admin/keys", {"type": "project", "projectId": "revoke-me"},
                                 headers={"X-API-Key": tenants.master})
    assert status == 201
    key = created["apiKey"]
    connections = _connections_to_every_web_process(stack, key, processes=2)
    for conn in connections:  # several uses each: served from each process's copy
        assert [_me(conn, key) for _ in range(5)] == [(200, None)] * 5

    status, _ = stack.http("DELETE", f"/api/admin/keys/{created['metadata']['id']}",
                           headers={"X-API-Key": tenants.master})
    assert status == 200
    # Every copy was read before the revocation, so none is trusted 1 s after it; poll until
    # every process refuses the key, or until a round that started 1.5 s after it.
    deadline = time.monotonic() + 1.5
    while True:
        started = time.monotonic()
        answers = [_me(conn, key) for conn in connections]
        if set(answers) == {(401, "api_key_revoked")} or started > deadline:
            break
        time.sleep(0.05)
    assert answers == [(401, "api_key_revoked")] * 2
    for conn in connections:
        conn.close()
