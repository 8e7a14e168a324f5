"""The machinery: what runs the course at scale and robustly, and what no lesson asks a learner to read.

Resumable, sharded labelling jobs; settings-keyed caches and sidecars; launching ranks; the main job's
pipeline and its stages; results, README and report rendering; `minikd serve` and its client; the CLI;
the benchmark, the reference GPT and the GPU check. It imports the teaching core (minikd/*.py); the core
never imports it.
"""
