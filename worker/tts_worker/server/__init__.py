"""The server around the app: the gunicorn worker class with read deadlines, the probe
listener, and process recycling (see each module)."""
