"""Image tag edits in the text of one file: container images in manifests, `images:` in Kustomizations,
and a target's `images:` override in an app's fleet.yaml. Pure: text in, text out.

Every edit is checked by parsing the result: the new document must equal the
old one with exactly the intended scalars changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from fleet.errors import FleetError
from fleet.imageset.yamledit import (
    Edit,
    add_key,
    append_item,
    apply_edits,
    compose_documents,
    get,
    get_path,
    items,
    line_of,
    load_plain,
    render_scalar,
    replace_scalar,
    scalar,
)
from fleet.render.customize import split_image

POD_SPEC_PATHS: tuple[tuple[str, ...], ...] = (
    ("spec", "template", "spec"),  # Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, and look-alike CRs
    ("spec", "jobTemplate", "spec", "template", "spec"),  # CronJob
)
CONTAINER_LISTS = ("initContainers", "containers")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class ImageSetError(FleetError):
    """The image cannot be set as asked; the message says why and nothing was written."""


@dataclass(frozen=True)
class ImageRef:
    """What CI pushed: `name:tag`, `name@digest` or `name:tag@digest`."""

    name: str
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        name, tag, digest = split_image(text.strip())
        if not name or (tag is None and digest is None):
            raise ImageSetError(f"{text!r}: give the image with its new tag, e.g. nginx:1.28")
        return cls(name=name, tag=tag, digest=digest)

    @property
    def version(self) -> str:
        return self.tag or str(self.digest)

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


@dataclass(frozen=True)
class ImageChange:
    file: str
    line: int
    old: str  # the previous value of the edited field (an image, or a tag)
    new: str


@dataclass(frozen=True)
class FileEdit:
    file: str
    old_text: str
    new_text: str
    changes: tuple[ImageChange, ...]
    matched: int  # fields that name the image, changed or already up to date
    skipped: tuple[str, ...] = ()  # matches left alone, with the reason

    @property
    def changed(self) -> bool:
        return self.new_text != self.old_text


# ------------------------------------------------------------------ checked edits


def _set(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _checked(file: str, text: str, edits: list[Edit], expected: list[Any]) -> str:
    new_text = apply_edits(text, edits)
    if load_plain(new_text) != expected:
        raise ImageSetError(f"{file}: the edit would change more than the image; left unchanged (please report this)")
    return new_text


# ------------------------------------------------------------------ manifests


def _objects(doc: Node) -> list[tuple[tuple[str | int, ...], Node]]:
    """(path within the document, object node) for the document or each item of a List."""
    kind = scalar(get(doc, "kind")) or ""
    if kind.endswith("List") and isinstance(get(doc, "items"), SequenceNode):
        return [(("items", index), item) for index, item in enumerate(items(get(doc, "items")))]
    return [((), doc)]


def _image_fields(obj: Node) -> list[tuple[tuple[str | int, ...], ScalarNode]]:
    kind = scalar(get(obj, "kind"))
    paths = [*POD_SPEC_PATHS, ("spec",)] if kind == "Pod" else list(POD_SPEC_PATHS)
    found: list[tuple[tuple[str | int, ...], ScalarNode]] = []
    for spec_path in paths:
        pod_spec = get_path(obj, spec_path)
        if not isinstance(pod_spec, MappingNode):
            continue
        for list_name in CONTAINER_LISTS:
            for index, container in enumerate(items(get(pod_spec, list_name))):
                image = get(container, "image")
                if isinstance(image, ScalarNode):
                    found.append(((*spec_path, list_name, index, "image"), image))
        break
    return found


def set_manifest_images(text: str, file: str, image: ImageRef) -> FileEdit:
    """Point every container and init container running `image.name` at the new tag."""
    docs = compose_documents(text, file)
    expected = load_plain(text)
    edits: list[Edit] = []
    changes: list[ImageChange] = []
    skipped: list[str] = []
    matched = 0
    for doc_index, doc in enumerate(docs):
        for obj_path, obj in _objects(doc):
            for field_path, node in _image_fields(obj):
                current = str(node.value)
                name, _tag, _digest = split_image(current)
                if name != image.name:
                    continue
                matched += 1
                if "${" in current:
                    skipped.append(f"{file}:{line_of(node)}: {current} is set through a value; change the value instead")
                    continue
                new = str(image)
                if new == current:
                    continue
                edits.append(replace_scalar(node, new))
                changes.append(ImageChange(file, line_of(node), current, new))
                _set(expected[doc_index], (*obj_path, *field_path), new)
    new_text = _checked(file, text, edits, expected) if edits else text
    return FileEdit(file, text, new_text, tuple(changes), matched, tuple(skipped))


def set_kustomization_images(text: str, file: str, image: ImageRef) -> FileEdit:
    """Update `images: [{name, newTag}]` entries for `image.name` in a kustomization file."""
    docs = compose_documents(text, file)
    expected = load_plain(text)
    edits: list[Edit] = []
    changes: list[ImageChange] = []
    matched = 0
    for doc_index, doc in enumerate(docs):
        for index, entry in enumerate(items(get(doc, "images"))):
            if scalar(get(entry, "name")) != image.name or not isinstance(entry, MappingNode):
                continue
            matched += 1
            for key, value in (("newTag", image.tag), ("digest", image.digest)):
                node = get(entry, key)
                current = scalar(node)
                if value is None:
                    if key == "digest" and node is not None:
                        raise ImageSetError(
                            f"{file}:{line_of(node)}: images[{index}] pins {image.name} to a digest; "
                            "give the new image with a digest, or remove the pin"
                        )
                    continue
                if current == value:
                    continue
                if isinstance(node, ScalarNode):
                    edits.append(replace_scalar(node, value))
                else:
                    edits.append(add_key(text, entry, key, render_scalar(value, flow=bool(entry.flow_style))))
                changes.append(ImageChange(file, line_of(node or entry), current or "", value))
                _set(expected[doc_index], ("images", index, key), value)
    new_text = _checked(file, text, edits, expected) if edits else text
    return FileEdit(file, text, new_text, tuple(changes), matched)


def current_tags(text: str, file: str, image_name: str) -> list[str]:
    """Tags (or digests) the manifests in `text` run `image_name` at."""
    found = []
    for doc in compose_documents(text, file):
        for _path, obj in _objects(doc):
            for _field, node in _image_fields(obj):
                name, tag, digest = split_image(str(node.value))
                if name == image_name:
                    found.append(tag or digest or "latest")
    return found


# ------------------------------------------------------------------ fleet.yaml targets


def parse_selector(text: str) -> dict[str, str]:
    """"env=prod,tier=web" -> {"env": "prod", "tier": "web"}."""
    selector: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        key, equals, value = part.partition("=")
        if not part or not equals or not key.strip():
            raise ImageSetError(f"--cluster-selector {text!r}: expected key=value[,key=value...]")
        selector[key.strip()] = value.strip()
    return selector


def _selector_text(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "{}"


def _match_labels(target: Node) -> dict[str, str] | None:
    selector = get(target, "clusterSelector")
    if not isinstance(selector, MappingNode):
        return None
    labels = get(selector, "matchLabels")
    if labels is None:
        return {}
    if not isinstance(labels, MappingNode):
        return None
    return {str(k.value): str(v.value) for k, v in labels.value if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)}


def set_target_image(text: str, file: str, selector: Mapping[str, str], image: ImageRef) -> tuple[FileEdit, int]:
    """Set `images: [{name, newTag}]` on the first target whose clusterSelector.matchLabels equals `selector`.

    Returns the edit and the target's index.
    """
    if image.tag is None or image.digest is not None:
        raise ImageSetError("a per-target override sets a tag: give the image as name:tag")
    tag = image.tag
    docs = compose_documents(text, file)
    if len(docs) != 1 or not isinstance(docs[0], MappingNode):
        raise ImageSetError(f"{file}: expected one YAML mapping")
    expected = load_plain(text)
    targets = items(get(docs[0], "targets"))
    seen = []
    for index, target in enumerate(targets):
        labels = _match_labels(target)
        seen.append(f"[{index}] {_selector_text(labels) if labels is not None else '(no clusterSelector)'}")
        if labels != dict(selector) or not isinstance(target, MappingNode):
            continue
        entry_data = {"name": image.name, "newTag": tag}
        plain_target = expected[0]["targets"][index]
        images_node = get(target, "images")
        old = ""
        edits: list[Edit] = []
        if images_node is None:
            flow = bool(target.flow_style)
            item = f"{{name: {render_scalar(image.name, flow=True)}, newTag: {render_scalar(tag, flow=True)}}}"
            edits.append(add_key(text, target, "images", f"[{item}]" if flow else f"\n  - {item}"))
            plain_target["images"] = [entry_data]
        elif not isinstance(images_node, SequenceNode):
            raise ImageSetError(f"{file}:{line_of(images_node)}: targets[{index}].images is not a list")
        else:
            entries = items(images_node)
            position = next((i for i, e in enumerate(entries) if scalar(get(e, "name")) == image.name), None)
            if position is None:
                item = f"{{name: {render_scalar(image.name, flow=True)}, newTag: {render_scalar(tag, flow=True)}}}"
                edits.append(append_item(text, images_node, item))
                plain_target["images"].append(entry_data)
            else:
                entry = entries[position]
                if not isinstance(entry, MappingNode):
                    raise ImageSetError(f"{file}:{line_of(entry)}: targets[{index}].images[{position}] is not a mapping")
                digest = get(entry, "digest")
                if digest is not None:
                    raise ImageSetError(
                        f"{file}:{line_of(digest)}: targets[{index}].images[{position}] pins {image.name} to a "
                        "digest, which wins over a tag; remove the digest to follow tags"
                    )
                tag_node = get(entry, "newTag")
                old = scalar(tag_node) or ""
                if old == tag:
                    return FileEdit(file, text, text, (), 1), index
                if isinstance(tag_node, ScalarNode):
                    edits.append(replace_scalar(tag_node, tag))
                else:
                    edits.append(add_key(text, entry, "newTag", render_scalar(tag, flow=bool(entry.flow_style))))
                plain_target["images"][position]["newTag"] = tag
        new_text = _checked(file, text, edits, expected)
        line = line_of(target)
        return FileEdit(file, text, new_text, (ImageChange(file, line, old, tag),), 1), index
    listed = "; ".join(seen) or "none"
    raise ImageSetError(
        f"{file}: no target has clusterSelector.matchLabels equal to {_selector_text(selector)} "
        f"(targets: {listed})"
    )
