"""``python -m training evaluate DIR …`` → :func:`training.cli.main`."""

from .cli import main

raise SystemExit(main())
