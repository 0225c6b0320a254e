"""gunicorn settings for Bastion's web processes: `gunicorn -c deploy/gunicorn.conf.py`.

Every value can be overridden from the environment (GUNICORN_CMD_ARGS or the variables
below), so one file serves a VM and a container.
"""

import os

bind = os.environ.get("BASTION_BIND", "127.0.0.1:8000")
wsgi_app = "bastion.wsgi:application"

# Request handling is mostly waiting on PostgreSQL: a few processes per core, each with a
# few threads, keep both cores busy without one slow request holding a whole process.
workers = int(os.environ.get("BASTION_WEB_WORKERS", (os.cpu_count() or 1) * 2))
threads = int(os.environ.get("BASTION_WEB_THREADS", 4))
worker_class = "gthread" if threads > 1 else "sync"

# Agents keep their connections open; a load balancer in front decides the real timeout.
keepalive = 5
timeout = 60
graceful_timeout = 30
# Recycle processes now and then so a slow leak can never take a host down.
max_requests = 5000
max_requests_jitter = 500

accesslog = "-" if os.environ.get("BASTION_LOG_FORMAT", "plain") != "json" else None
errorlog = "-"
loglevel = "warning"
# The client address comes from the proxy only when it is on this host.
forwarded_allow_ips = os.environ.get("BASTION_FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    # prometheus_client keeps one file per process; tell it this one is gone.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
