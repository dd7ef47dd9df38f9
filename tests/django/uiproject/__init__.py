"""A small Django project that mounts the SauCI app, for the UI tests."""
