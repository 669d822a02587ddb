#!/usr/bin/env python
"""The example project's manage.py: ``python example_project/manage.py runserver`` from a
clone (in a virtualenv with the package installed: ``pip install -e .``).

The project package is ``example_project`` at the root of the clone, beside ``renewals`` and
``notifications``: the root goes on ``sys.path`` in place of this folder (whose modules,
``settings`` or ``forms``, are the package's, not top-level ones), wherever this is run from.
"""

import os
import sys
from pathlib import Path


def main() -> None:
    here = Path(__file__).resolve().parent
    sys.path[:] = [str(here.parent), *(p for p in sys.path if Path(p).resolve() != here)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
