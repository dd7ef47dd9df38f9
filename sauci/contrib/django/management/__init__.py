"""``manage.py sauci_serve`` and ``manage.py sauci_worker``: SauCI's server and worker for a site."""
