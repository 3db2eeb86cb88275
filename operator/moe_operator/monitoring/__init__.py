"""Monitoring as code: Prometheus recording and alerting rules (and, later, dashboards). Pure data."""
