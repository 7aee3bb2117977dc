"""Tiny typed readers for environment variables.

Each one raises ``ImproperlyConfigured`` naming the variable and what it expected, so a
bad value stops start-up with a message an operator can act on.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bad(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is invalid: expected {expected}.")


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _bad(name, raw, "one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _bad(name, raw, "an integer") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _bad(name, raw, f"an integer between {minimum} and {maximum}")
    return value


def env_float(name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise _bad(name, raw, "a number") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise _bad(name, raw, f"a number between {minimum} and {maximum}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_seconds_list(name: str, default: str, *, maximum: float) -> tuple[float, ...]:
    """Comma-separated seconds ("0,5,300"): at least one, each from 0 to ``maximum``."""
    raw = env_str(name, default)
    try:
        values = tuple(float(item) for item in raw.split(",") if item.strip())
    except ValueError:
        raise _bad(name, raw, "comma-separated seconds, e.g. 0,5,300") from None
    if not values or any(not 0 <= value <= maximum for value in values):
        raise _bad(name, raw, f"comma-separated seconds, at least one, each from 0 to {maximum:g}")
    return values


def env_url(name: str, default: str = "", *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    value = env_str(name, default)
    if not value:
        return ""
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        raise _bad(name, value, f"a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value


# A rate: count per [n] unit, "100/h", "5/m", "10/30s" (django-ratelimit's grammar, kept).
_RATE = re.compile(r"^(\d+)/(\d*)([smhd])$")
_RATE_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def split_rate(value: str) -> tuple[int, int]:
    """(count, window seconds) of a rate env_rate accepted: "10/30s" is (10, 30)."""
    match = _RATE.match(value)
    if not match:
        raise ValueError(f"not a rate: {value!r}")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _RATE_UNIT_SECONDS[unit]


def env_rate(name: str, default: str) -> str:
    value = env_str(name, default)
    match = _RATE.match(value)
    if not match or int(match.group(1)) < 1 or match.group(2) == "0":
        raise _bad(name, value, "a rate like 100/h, 5/m, 10/30s (count/[n]unit, unit one of s m h d)")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise _bad(name, value, "one of " + ", ".join(choices))
    return value


def env_prices(name: str, defaults: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Prices per model in USD, JSON: {"model": {"input": per 1M input tokens, "output": per 1M
    output tokens, "image": optional, per image instead of output tokens}}. The models named
    replace their defaults; the others keep theirs."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return {model: dict(price) for model, price in defaults.items()}
    expected = ('JSON like {"gemini-2.5-flash-image": {"input": 0.30, "output": 30}}: per model, USD per 1M '
                'input and output tokens (numbers >= 0), and optionally "image": USD per image')
    try:
        value = json.loads(raw)
    except ValueError:
        raise _bad(name, raw, expected) from None
    if not isinstance(value, dict):
        raise _bad(name, raw, expected)
    prices = {model: dict(price) for model, price in defaults.items()}
    for model, price in value.items():
        if (not isinstance(price, dict) or not {"input", "output"} <= price.keys()
                or not price.keys() <= {"input", "output", "image"}
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in price.values())):
            raise _bad(name, raw, expected)
        prices[model] = {key: float(v) for key, v in price.items()}
    return prices


def var_dir() -> Path:
    """Local state (SQLite file, media, generated SECRET_KEY): BANATIE_VAR_DIR, default var/
    beside the code. Read here once for the settings and the `make run` runner alike."""
    return Path(env_str("BANATIE_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var")))


def shutdown_grace_seconds() -> int:
    """How long every process may take to stop after SIGTERM before it is killed: in-flight
    sync requests (gunicorn's graceful_timeout) and running jobs finish within it. Read here
    once for the settings, gunicorn's config and the `make run` runner alike."""
    return env_int("SHUTDOWN_GRACE_SECONDS", 30, minimum=1, maximum=3600)


def worker_processes() -> int:
    """Copies of the Procfile's ``worker`` line that `make run` starts (and the benchmarks)."""
    return env_int("WORKER_PROCESSES", 2, minimum=1, maximum=64)


def load_env_file() -> Path | None:
    """Load `.env` (or BANATIE_ENV_FILE) into the environment, without overriding variables
    already set, so `make run`, `make manage` and `manage.py` see the same configuration.
    Returns the file loaded, if any. `make test` does not call it: tests use fixtures."""
    path = Path(os.environ.get("BANATIE_ENV_FILE") or Path(__file__).resolve().parent.parent / ".env")
    if not path.is_file():
        return None
    from dotenv import load_dotenv  # python-dotenv: the maintained parser of the format

    load_dotenv(path, override=False)
    return path
