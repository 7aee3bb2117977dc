"""Routes take an optional trailing slash themselves (no redirects: a redirected POST loses
its body). Used by banatie/urls.py and every app's urls.py."""
from __future__ import annotations

from django.urls import URLPattern, re_path
from rest_framework.views import APIView


def route(pattern: str, view: type[APIView], name: str) -> URLPattern:
    return re_path(rf"^{pattern}/?$", view.as_view(), name=name)
