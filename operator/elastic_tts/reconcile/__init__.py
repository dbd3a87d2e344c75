"""Reconcile: render the children, observe the cluster, apply decisions, build status.

This layer sits between the kopf handlers and the pure policy. It talks to the cluster
and to Prometheus only through the small ports in `ports.py`; the adapters implement
them. It never imports kopf or an API client, so every step here is a plain function of
its inputs plus those ports.
"""
