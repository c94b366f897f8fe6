#!/usr/bin/env python
"""Django's command-line utility for perfkit.

When the command is ``run_perf`` gevent must patch the standard library before anything
else imports ``socket`` or ``threading``, so the patch happens here, ahead of Django.
"""

import os
import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "run_perf":
        from gevent import monkey

        monkey.patch_all()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings_perf")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
