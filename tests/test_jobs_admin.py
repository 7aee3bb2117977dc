"""The jobs admin: list (filters, search, date hierarchy), a read-only job page, and the
"Cancel selected jobs" action, permission-checked like the keys admin.

Jobs are made through the API. In tests with only the `db` fixture, a job answered 202 stays
queued: its task is published on commit, and the test's transaction never commits."""
from __future__ import annotations

import html
import json
import re

import pytest
from django.contrib.auth.models import Permission, User

from apps.jobs.models import Job
from tests.conftest import auth, wait_for

pytestmark = pytest.mark.django_db

ASYNC = {"HTTP_PREFER": "respond-async"}
LIST = "/admin/jobs/job/"
JOB_LINK = re.compile(r'href="/admin/jobs/job/([0-9a-f-]{36})/change/')


def enhance(api, key, prompt="A red fox in the snow", **headers) -> dict:  # type: ignore[no-untyped-def]
    r = api.post("/api/enhance", {"prompt": prompt}, format="json", **auth(key), **headers)
    assert r.status_code in (200, 202), r.json()
    return r.json()


def queued_enhancement(api, key, prompt="A red fox in the snow") -> str:  # type: ignore[no-untyped-def]
    return enhance(api, key, prompt, **ASYNC)["jobId"]


def queued_image(api, key) -> str:  # type: ignore[no-untyped-def]
    r = api.post("/api/text-to-image", {"prompt": "A lighthouse at dawn", "filename": "lighthouse",
                                        "autoEnhance": False}, format="json", **auth(key), **ASYNC)
    assert r.status_code == 202, r.json()
    return r.json()["jobId"]


def listed(client, **params: str) -> set[str]:  # type: ignore[no-untyped-def]
    r = client.get(LIST, params)
    assert r.status_code == 200
    return set(JOB_LINK.findall(r.content.decode()))


def cancel_action(client, *job_ids: str):  # type: ignore[no-untyped-def]
    return client.post(LIST, {"action": "cancel_selected", "_selected_action": list(job_ids)}, follow=True)


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in response.context["messages"]]


def staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames))
    return user


@pytest.fixture
def viewer(db) -> User:  # type: ignore[no-untyped-def]
    return staff("viewer", "view_job")


@pytest.fixture
def canceler(db) -> User:  # type: ignore[no-untyped-def]
    return staff("canceler", "view_job", "cancel_job")


# --- the list ----------------------------------------------------------------------------

def test_job_list_shows_every_column_and_filters_by_status_kind_and_project(client, admin_user, api, tenants):
    text_a = queued_enhancement(api, tenants.a)
    image_b = queued_image(api, tenants.b)
    canceled_a = queued_enhancement(api, tenants.a, "A grey wolf")
    assert api.post(f"/api/jobs/{canceled_a}/cancel", **auth(tenants.a)).status_code == 200
    client.force_login(admin_user)

    page = client.get(LIST).content.decode()
    columns = re.findall(r'<th scope="col" class="sortable column-(\w+).*?<a href="[^"]*">([^<]+)</a>', page, re.S)
    assert columns == [("id", "Id"), ("kind", "Kind"), ("status", "Status"), ("project_id", "Project id"),
                       ("created_at", "Created at"), ("finished_at", "Finished at"), ("attempts", "Attempts"),
                       ("error_code", "Error code")]
    assert "job_canceled" in page  # the canceled job's error code
    assert listed(client) == {text_a, image_b, canceled_a}
    assert listed(client, status__exact="canceled") == {canceled_a}
    assert listed(client, status__exact="queued") == {text_a, image_b}
    assert listed(client, kind="generation") == {image_b}
    assert listed(client, kind="enhancement") == {text_a, canceled_a}
    assert listed(client, project_id="project-b") == {image_b}
    # The filters are offered in the sidebar, with the values that exist.
    assert "?status__exact=canceled" in page and "?kind=generation" in page and "?project_id=project-a" in page


def test_job_list_search_finds_a_job_by_its_full_id_or_its_project(client, admin_user, api, tenants):
    mine = queued_enhancement(api, tenants.a)
    other = queued_enhancement(api, tenants.b)
    client.force_login(admin_user)
    assert listed(client, q=mine) == {mine}
    assert listed(client, q=other.upper()) == {other}
    assert listed(client, q="project-b") == {other}
    assert listed(client, q="no-such-project") == set()


def test_job_list_has_a_date_hierarchy_on_created_at(client, admin_user, api, tenants):
    job_id = queued_enhancement(api, tenants.a)
    created = Job.objects.get(pk=job_id).created_at
    client.force_login(admin_user)
    page = client.get(LIST).content.decode()
    assert f"?created_at__year={created.year}" in page
    assert listed(client, created_at__year=str(created.year), created_at__month=str(created.month)) == {job_id}
    assert listed(client, created_at__year=str(created.year - 1)) == set()


# --- the job page --------------------------------------------------------------------------

def test_job_page_shows_request_and_result_as_json_and_cannot_be_saved(client, admin_user, api, worker, tenants):
    body = enhance(api, tenants.a, "A lighthouse at dawn")
    job_id = body["jobId"]
    client.force_login(admin_user)
    page = client.get(f"{LIST}{job_id}/change/")
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert '"prompt": "A lighthouse at dawn"' in text  # pretty-printed, one key per line
    assert f'"enhancedPrompt": {json.dumps(body["enhancedPrompt"])}' in text
    assert "succeeded" in text and job_id in text
    assert 'name="_save"' not in text and 'name="_continue"' not in text and "/delete/" not in text

    r = client.post(f"{LIST}{job_id}/change/", {"status": "failed", "kind": "generation", "project_id": "x"})
    assert r.status_code == 403
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()["status"] == "succeeded"
    assert client.post(f"{LIST}{job_id}/delete/", {"post": "yes"}).status_code == 403
    assert client.get(f"{LIST}add/").status_code == 403
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).status_code == 200


def test_job_list_offers_no_bulk_delete(client, admin_user, api, tenants):
    job_id = queued_enhancement(api, tenants.a)
    client.force_login(admin_user)
    page = client.get(LIST).content.decode()
    assert 'value="cancel_selected"' in page and 'value="delete_selected"' not in page
    client.post(LIST, {"action": "delete_selected", "_selected_action": [job_id], "post": "yes"})
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).status_code == 200


# --- the cancel action ---------------------------------------------------------------------

def test_cancel_action_cancels_queued_jobs_and_reports_finished_ones(client, admin_user, api, tenants):
    queued = queued_enhancement(api, tenants.a)
    other_project = queued_image(api, tenants.b)
    already = queued_enhancement(api, tenants.a, "A grey wolf")
    assert api.post(f"/api/jobs/{already}/cancel", **auth(tenants.a)).status_code == 200
    finished_at = api.get(f"/api/jobs/{already}", **auth(tenants.a)).json()["finishedAt"]
    client.force_login(admin_user)

    r = cancel_action(client, queued, other_project, already)
    assert messages_of(r) == ["Canceled 2 jobs. Skipped 1 job already finished."]
    for job_id, key in ((queued, tenants.a), (other_project, tenants.b)):
        job = api.get(f"/api/jobs/{job_id}", **auth(key)).json()
        assert (job["status"], job["cancelReason"], job["error"]["code"]) == ("canceled", "requested", "job_canceled")
    assert api.get(f"/api/jobs/{already}", **auth(tenants.a)).json()["finishedAt"] == finished_at


def test_cancel_action_stops_a_running_job_and_skips_a_succeeded_one(client, admin_user, api, worker, gemini, tenants):
    succeeded = enhance(api, tenants.a)["jobId"]
    gemini.latency = 3.0
    running = queued_image(api, tenants.a)
    wait_for(lambda: api.get(f"/api/jobs/{running}", **auth(tenants.a)).json()["status"] == "running", 10,
             "the job to start")
    client.force_login(admin_user)

    r = cancel_action(client, running, succeeded)
    assert messages_of(r) == ["Canceled 1 job. Skipped 1 job already finished."]
    job = api.get(f"/api/jobs/{running}", **auth(tenants.a)).json()
    assert (job["status"], job["cancelReason"]) == ("canceled", "requested")
    assert api.get(f"/api/jobs/{succeeded}", **auth(tenants.a)).json()["status"] == "succeeded"
    r = cancel_action(client, succeeded)
    assert messages_of(r) == ["Canceled 0 jobs. Skipped 1 job already finished."]


def test_jobs_the_action_leaves_alone_stay_as_they_were(client, admin_user, api, tenants):
    selected = queued_enhancement(api, tenants.a)
    untouched = queued_enhancement(api, tenants.a, "A grey wolf")
    client.force_login(admin_user)
    cancel_action(client, selected)
    assert api.get(f"/api/jobs/{untouched}", **auth(tenants.a)).json()["status"] == "queued"


# --- permissions ---------------------------------------------------------------------------

def test_staff_with_only_the_view_permission_sees_jobs_but_not_the_action_and_cannot_post_it(
        client, viewer, api, tenants):
    job_id = queued_enhancement(api, tenants.a)
    client.force_login(viewer)
    page = client.get(LIST).content.decode()
    assert job_id in page and "cancel_selected" not in page
    assert client.get(f"{LIST}{job_id}/change/").status_code == 200

    r = cancel_action(client, job_id)
    assert r.status_code == 200 and messages_of(r) == []
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()["status"] == "queued"


def test_staff_with_the_cancel_permission_cancels(client, canceler, api, tenants):
    job_id = queued_enhancement(api, tenants.a)
    client.force_login(canceler)
    assert 'value="cancel_selected"' in client.get(LIST).content.decode()
    r = cancel_action(client, job_id)
    assert messages_of(r) == ["Canceled 1 job."]
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()["cancelReason"] == "requested"


def test_the_cancel_permission_alone_does_not_open_the_jobs_admin(client, api, tenants):
    job_id = queued_enhancement(api, tenants.a)
    client.force_login(staff("cancel-only", "cancel_job"))
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{job_id}/change/").status_code == 403
    assert client.post(LIST, {"action": "cancel_selected", "_selected_action": [job_id]}).status_code == 403
    assert api.get(f"/api/jobs/{job_id}", **auth(tenants.a)).json()["status"] == "queued"


def test_staff_without_job_permissions_sees_no_jobs(client, api, tenants):
    job_id = queued_enhancement(api, tenants.a)
    client.force_login(staff("nobody"))
    assert client.get(LIST).status_code == 403
    assert LIST not in client.get("/admin/").content.decode()
    assert client.get(f"{LIST}{job_id}/change/").status_code == 403


def test_superuser_sees_the_action(client, admin_user, api, tenants):
    queued_enhancement(api, tenants.a)
    client.force_login(admin_user)
    page = client.get(LIST).content.decode()
    assert 'value="cancel_selected"' in page and "Cancel selected jobs" in page


def test_a_job_is_only_shown_after_login(client, api, tenants):
    job_id = queued_enhancement(api, tenants.a)
    r = client.get(f"{LIST}{job_id}/change/")
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/")

