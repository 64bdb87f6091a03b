"""svc-studio web demo: `python app.py` serves the page on http://127.0.0.1:7860 (see `python app.py --help`)."""
import sys

from svc_core.ui.server import main

if __name__ == "__main__":
    sys.exit(main())
