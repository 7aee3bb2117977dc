"""Django admin for keys: list, create (the plaintext is shown once, on the response page
itself, never through messages/session storage), revoke."""
from __future__ import annotations

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST
from django.template.response import TemplateResponse
from django.utils import timezone

from apps.keys.errors import LastMasterKey
from apps.keys.models import ApiKey
from apps.keys.services import key_create, key_revoke


class KeyCreateForm(forms.Form):
    key_type = forms.ChoiceField(choices=ApiKey.Type.choices, initial=ApiKey.Type.PROJECT)
    project_id = forms.RegexField(regex=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", required=False)
    organization_id = forms.CharField(max_length=100, required=False)
    name = forms.CharField(max_length=200, required=False)
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False,
        help_text="Empty: 90 days for project keys, never for master keys.",
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("key_type") == ApiKey.Type.PROJECT and not data.get("project_id"):
            self.add_error("project_id", "Project keys need a project id.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("display_prefix", "key_type", "project_id", "name", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("key_type", "revoked_at")
    search_fields = ("prefix", "project_id", "name")
    readonly_fields = (
        "id", "display_prefix", "key_type", "project_id", "organization_id", "created_by",
        "created_at", "expires_at", "revoked_at", "last_used_at",
    )
    fields = readonly_fields + ("name",)
    actions = ["revoke_selected"]
    change_form_template = "admin/keys/apikey/change_form.html"

    @admin.display(description="key")
    def display_prefix(self, obj: ApiKey) -> str:
        return f"bnt_{obj.prefix}…"

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke, never delete: jobs and audit keep pointing at the key

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        for key in queryset.filter(revoked_at__isnull=True):
            try:
                key_revoke(key=key)
            except LastMasterKey as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return
        self.message_user(request, "Revoked.", messages.SUCCESS)

    def get_urls(self) -> list:  # type: ignore[type-arg]
        revoke = path("<uuid:key_id>/revoke/", self.admin_site.admin_view(self.revoke_view), name="keys_apikey_revoke")
        return [revoke, *super().get_urls()]

    @method_decorator(require_POST)
    def revoke_view(self, request: HttpRequest, key_id: uuid.UUID) -> HttpResponse:
        """The key page's Revoke button (POST only, change permission): as the API revokes."""
        key = self.get_object(request, str(key_id))
        if key is None:
            raise Http404
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        try:
            key_revoke(key=key)
            self.message_user(request, f"Revoked {self.display_prefix(key)}.", messages.SUCCESS)
        except LastMasterKey as exc:
            self.message_user(request, exc.message, messages.ERROR)
        return redirect("admin:keys_apikey_change", key.pk)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = KeyCreateForm(request.POST or None)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": "Create API key"}
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            minted = key_create(
                key_type=data["key_type"], project_id=data["project_id"] or None,
                organization_id=data["organization_id"] or None, name=data["name"] or "",
                expires_in_days=data["expires_in_days"],
            )
            context.update(key=minted.key, plaintext=minted.plaintext, title="API key created", now=timezone.now())
            response = TemplateResponse(request, "admin/keys/apikey/created.html", context)
            response["Cache-Control"] = "no-store"
            return response
        return TemplateResponse(request, "admin/keys/apikey/create.html", context)
