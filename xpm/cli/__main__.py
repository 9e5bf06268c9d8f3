"""``python -m xpm.cli``: the same as the ``xpm`` command."""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    main()
