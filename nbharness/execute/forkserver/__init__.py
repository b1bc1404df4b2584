"""The fork server: ``server.py`` runs as a process and forks kernels; ``client.py`` drives it."""
