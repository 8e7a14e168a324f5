"""`python -m minikd`: the command line, minikd.machinery.cli (this file only starts it)."""

import sys

from minikd.machinery.cli import main

if __name__ == "__main__":
    sys.exit(main())
