"""`python -m minikd`: the command line. This file is only the door: it runs minikd/machinery/cli.py as the
program; no core module imports the machinery."""

import runpy

if __name__ == "__main__":
    runpy.run_module("minikd.machinery.cli", run_name="__main__", alter_sys=True)
