"""`fleet image set`: move an app to a new image tag in the fleet repo, keeping the files as written.

Manifests are edited in place (only the image scalar changes), or a target's
`images:` override in the app's fleet.yaml when a cluster selector is given.
"""

from fleet.imageset.apply import GitWorkspace, ImageSetResult, plan_image_set, write
from fleet.imageset.rewrite import (
    ImageChange,
    ImageRef,
    ImageSetError,
    parse_selector,
    set_manifest_images,
    set_target_image,
)

__all__ = [
    "GitWorkspace",
    "ImageChange",
    "ImageRef",
    "ImageSetError",
    "ImageSetResult",
    "parse_selector",
    "plan_image_set",
    "set_manifest_images",
    "set_target_image",
    "write",
]
