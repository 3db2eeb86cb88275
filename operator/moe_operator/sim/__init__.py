"""The engine simulator: Prometheus metrics of a deployment's engines, from the capacity model, without GPUs."""
