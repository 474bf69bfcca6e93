"""An OM's tensor names matched to the bundle's ONNX names, in every form ATC gives them.

ATC names the outputs of an OM converted from ONNX (reference, Corrections: CANN doc
"aclmdlGetOutputNameByIndex", ATC `--out_nodes`):

  "prob"           the ONNX name itself (inputs; other frameworks)
  "Op:0:prob"      "<op>:<idx>:<tensor>": without --out_nodes, or with its output-name form
                   (`--out_nodes="prob;label"`, CANN >= 6.0.1)
  "Op:0"           "<op>:<idx>": with the node form (`--out_nodes="node:0;node2:1"`); no tensor name

The op is the node that produces the tensor, possibly a fused or subgraph name holding any
character (`/`, `_`, even `:`), so a name is read from the right: the tensor is what follows
"<op>:<idx>:". An "<op>:<idx>" name says nothing about the tensor, so it is matched by position,
in the order the bundle's manifest records (the order its ATC command pinned with --out_nodes);
only when that is unambiguous, else the match is refused.
"""
from __future__ import annotations

import re

from ..errors import BackendError

_OP_INDEX = re.compile(r".+:\d+")  # "<op>:<idx>", the op non-empty

CONVERT_AGAIN = ("convert again with `ascend-asr convert` (its ATC command names the outputs by tensor with "
                 "--out_nodes=\"name;name2\" and pins their order)")


def tensor_name(om_name: str, wanted: str) -> bool:
    """Whether the OM name `om_name` names the tensor `wanted`: plainly or as "<op>:<idx>:<wanted>"."""
    if om_name == wanted:
        return True
    suffix = ":" + wanted
    return om_name.endswith(suffix) and _OP_INDEX.fullmatch(om_name[:-len(suffix)]) is not None


def names_no_tensor(om_name: str) -> bool:
    """An "<op>:<idx>" name (the node form of --out_nodes): the tensor it holds is not named."""
    return _OP_INDEX.fullmatch(om_name) is not None


def match_names(model_names: list[str], wanted: list[str], kind: str, model_path: str,
                order: list[str] | None = None) -> dict[str, int]:
    """The index in the model of each wanted tensor: {wanted name: index}, in `wanted`'s order.

    By name first: an exact name, else the tensor part of "<op>:<idx>:<tensor>". A wanted name left
    over is matched by position only when the model's names at those positions are "<op>:<idx>"
    (they name no tensor), the model has exactly as many tensors as `order` lists (the manifest's
    recorded order, `wanted` by default) and every tensor matched by name sits where `order` says.
    Anything else, or a name matching two tensors, raises a BackendError naming the model and the
    names found.
    """
    order = list(wanted if order is None else order)
    found: dict[str, int] = {}
    left: list[str] = []
    for name in wanted:
        exact = [i for i, m in enumerate(model_names) if m == name]
        hits = exact or [i for i, m in enumerate(model_names) if tensor_name(m, name)]
        if len(hits) > 1:
            raise BackendError(f"{model_path}: {kind} {name!r} is ambiguous: it matches "
                               f"{[model_names[i] for i in hits]} among the model's {kind}s {model_names}; "
                               f"{CONVERT_AGAIN}")
        if hits:
            found[name] = hits[0]
        else:
            left.append(name)
    if left:
        _by_position(model_names, left, found, order, kind, model_path)
    claimed: dict[int, str] = {}
    for name, i in found.items():
        if i in claimed:
            raise BackendError(f"{model_path}: {kind}s {claimed[i]!r} and {name!r} both match the model's "
                               f"{kind} {model_names[i]!r} (the model's {kind}s: {model_names}); {CONVERT_AGAIN}")
        claimed[i] = name
    return {name: found[name] for name in wanted}


def _by_position(model_names: list[str], left: list[str], found: dict[str, int], order: list[str], kind: str,
                 model_path: str) -> None:
    """Match the names in `left` by their position in `order`, or say why that is not safe."""
    def refuse(why: str, name: str = left[0]) -> BackendError:
        return BackendError(f"{model_path}: {kind} {name!r} not found among the model's {kind}s {model_names}"
                            f"{why}; {CONVERT_AGAIN}")

    unnamed = [m for m in model_names if names_no_tensor(m)]
    if not unnamed:
        raise refuse("")
    if len(model_names) != len(order):
        raise refuse(f" (names without a tensor, as the node form of --out_nodes gives, are matched by the "
                     f"order the bundle records, {order}, but the model has {len(model_names)} {kind}s, not "
                     f"{len(order)})")
    for name, i in found.items():
        if name in order and order.index(name) != i:
            raise refuse(f" ({name!r} is {kind} {i} of the model but {order.index(name)} in the order the bundle "
                         f"records, {order}, so the model's order is not that one)")
    for name in left:
        if name not in order:
            raise refuse(f" (nor in the order the bundle records, {order})", name)
        i = order.index(name)
        if not names_no_tensor(model_names[i]):
            raise refuse(f" ({kind} {i} of the model, {model_names[i]!r}, names another tensor)", name)
        found[name] = i
