"""Deployment code: the Grafana dashboard and the chart README, generated from typed sources."""
