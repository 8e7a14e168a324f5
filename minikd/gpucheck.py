"""`python -m minikd.gpucheck`: the one GPU check. This file is only the door: it runs minikd/machinery/gpucheck.py as the
program; no core module imports the machinery."""

import runpy

if __name__ == "__main__":
    runpy.run_module("minikd.machinery.gpucheck", run_name="__main__", alter_sys=True)
