"""``python -m coverage.demo [ROOT]``: regenerate the synthetic demo into ROOT or the repository root."""

from coverage.demo.files import main

raise SystemExit(main())
