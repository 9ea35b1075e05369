"""``python -m engine`` → :func:`engine.cli.main`."""

from .cli import main

raise SystemExit(main())
