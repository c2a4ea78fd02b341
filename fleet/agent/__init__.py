"""The pull agent: fetches its cluster's desired state from the hub, applies it
with server-side apply, prunes what was removed, reverts drift and reports
health. It never reads Git."""
