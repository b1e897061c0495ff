"""`python -m fastnn`: every compiled kernel checked against its NumPy oracle, then timed
against the NumPy reference and PyTorch (fastnn/_report.py; `python -m fastnn --help`)."""
import sys

from fastnn._report import main

if __name__ == "__main__":
    sys.exit(main())
