"""gevent's patch of the standard library, for ``run_perf`` run from the command line.

The users are greenlets, and every socket, lock and sleep must be gevent's for them to take turns.
The patch is safest before anything imports ``socket`` or ``threading``, so this repository's
``manage.py`` applies it ahead of Django for ``run_perf``. An adopting project's ``manage.py`` does
not know about it; then the command patches when it is run from the command line
(``Command.run_from_argv``): after Django and the project's apps are imported, but before the command
opens any connection or starts any thread, which is what matters here. Never on import: the admin's
New run page imports the command to check its options inside the web server, which must stay
unpatched. gevent warns that ``ssl`` was imported first; load goes over plain http to loopback
addresses (https targets use gevent's own ssl), so that warning is not shown.
"""

import contextlib
import warnings

from django.db import connections
from gevent import monkey


def patch_standard_library() -> None:
    """Patch once; a no-op when ``manage.py`` (or a gevent Celery worker) already has.

    Django's database connections remember the thread that made them, and after the patch "the
    thread" is the current greenlet: a connection made before (Django's checks may make one) would
    refuse to be used or closed. So they are closed first and forgotten after, to be made anew.
    """
    if monkey.is_module_patched("socket"):
        return
    connections.close_all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", monkey.MonkeyPatchWarning)
        monkey.patch_all()
    for alias in connections:
        with contextlib.suppress(AttributeError):  # never made in this process
            del connections[alias]
