"""Every test process is gevent-patched, and patched first.

The load client's tests (tests/loadtests) import Locust, which monkey-patches the process
with gevent when it is imported. Patching after an ``ssl`` user such as urllib3 (imported
by requests, which the server tests use) has been imported breaks it — a RecursionError in
``ssl.SSLContext`` while Locust builds its own context — so which test file a run collected
first decided whether the run could start at all. Patching here, before any test module is
imported, gives every selection and order of test files the same process: the one a full
run always had (its collection imports Locust before any test runs). The reference servers
the tests start are subprocesses of their own (aiohttp on asyncio), untouched by this.
"""

from gevent import monkey

monkey.patch_all()
