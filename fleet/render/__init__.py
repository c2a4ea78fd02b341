"""Per-cluster bundles: ordered objects with ownership labels and a content digest.

Secrets appear only as placeholders that name where their values come from.
"""

from fleet.render.bundle import Bundle, Renderer, RenderResult, compute_digest, finalize, render_fleet

__all__ = ["Bundle", "RenderResult", "Renderer", "compute_digest", "finalize", "render_fleet"]
