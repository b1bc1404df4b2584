"""Clients of Jupyter's REST APIs: a server's kernels, a hub's users and servers."""
