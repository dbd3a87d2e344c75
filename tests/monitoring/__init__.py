"""The dashboard and the alerts, checked against the real exporters and promtool."""
