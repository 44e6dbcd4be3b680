"""Telemetry: Prometheus metrics."""
