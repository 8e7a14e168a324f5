"""`python -m minikd.gpucheck`: the one GPU check, minikd.machinery.gpucheck (this file only starts it)."""

import sys

from minikd.machinery.gpucheck import main

if __name__ == "__main__":
    sys.exit(main())
