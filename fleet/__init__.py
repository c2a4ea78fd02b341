"""fleet: a multi-cluster Kubernetes fleet manager driven by Git.

The hub renders each cluster's desired state from a Git repository; a pull
agent in every cluster applies it with server-side apply, prunes what Git no
longer holds, reverts drift and reports health back.
"""

__version__ = "0.1.0"
