"""The reference simplejwt server: a small Django + DRF + simplejwt project for tests, demos and QA.

It is *not* part of the product (the hospital's server is not ours); it stands in for "any
simplejwt-compatible server". Layout:

- ``settings`` / ``urls`` / ``wsgi``: the Django project, configured by ``KIOSK_SERVER_*``.
- ``ward``: the one app (patients, observations, demo data, test-only request counters).
- ``manage``: ``python -m kiosk.testing.server.manage migrate-and-seed`` (or any Django command).
- ``runner``: :class:`~kiosk.testing.server.runner.ReferenceServer`, gunicorn on 127.0.0.1.
"""
