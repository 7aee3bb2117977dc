"""gunicorn settings shared by the Procfile, `make run` and the benchmarks.

gthread, not sync: a synchronous API call holds its connection while Gemini works
(seconds), so each process needs many threads; sync workers collapse under load.
"""
from banatie.env import env_int, env_str
from banatie.settings import SHUTDOWN_GRACE_SECONDS, SYNC_WAIT_SECONDS, TRUSTED_PROXIES

bind = f"{env_str('HOST', '127.0.0.1')}:{env_int('PORT', 3000, minimum=1, maximum=65535)}"
worker_class = "gthread"
workers = env_int("WEB_CONCURRENCY", 2, minimum=1, maximum=64)
threads = env_int("WEB_THREADS", 100, minimum=1, maximum=2000)
# Waiting requests are idle, not stuck: allow the documented SYNC_WAIT_SECONDS plus margin.
timeout = int(SYNC_WAIT_SECONDS) + 60
# SIGTERM: stop accepting, let in-flight requests finish for the same grace `make run` and
# the systemd units give the whole process before SIGKILL.
graceful_timeout = SHUTDOWN_GRACE_SECONDS
keepalive = 5
backlog = 2048
# Accepted connections wait inside the process for a free thread (first come, first
# served) instead of starving in the listen backlog.
worker_connections = max(threads * 2, 1000)
# X-Forwarded-* only from configured proxies (gunicorn's default trusts any loopback client).
forwarded_allow_ips = ",".join(TRUSTED_PROXIES)
accesslog = None
errorlog = "-"
