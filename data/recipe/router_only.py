"""Cuts an exported OLMoE-mini graph after its last router: the router-only graph.

The routing views read router logits and the expert bias only; the LM head and
the last layer's experts are dead weight for them. This keeps every node that
`router_logits` and `expert_bias` depend on (walking back from those outputs)
and the initializers those nodes read, and drops the rest: about a quarter of
the file, and of the forward time. The outputs it keeps are computed by the
same nodes on the same weights, so they equal the full graph's (a model test
checks it).

usage: python3 data/recipe/router_only.py data/models/micro.onnx [more.onnx ...]
writes data/models/micro.router.onnx beside each.
"""
import sys

import onnx
from onnx import helper

KEPT_OUTPUTS = ("router_logits", "expert_bias")
# export.py's route overrides: the router-only graph serves the plain routing
# views, so it bakes in the values that change nothing and takes input_ids alone
OVERRIDE_DEFAULTS = {"forced_experts": ("int64", -1), "router_input_noise": ("float32", 0.0), "router_bf16": ("float32", 0.0)}


def no_override_constant(graph_input):
    """An [L, 1, 1, *] (or 0-d) initializer of the value that changes nothing."""
    import numpy as np
    from onnx import numpy_helper
    dtype, value = OVERRIDE_DEFAULTS[graph_input.name]
    dims = graph_input.type.tensor_type.shape.dim
    if len(dims) == 0:
        shape = ()
    else:
        shape = (dims[0].dim_value, 1, 1, dims[3].dim_value)
    return numpy_helper.from_array(np.full(shape, value, dtype=dtype), graph_input.name)


def router_only(model):
    graph = model.graph
    needed = set(KEPT_OUTPUTS)
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    kept.reverse()
    initializers = [t for t in graph.initializer if t.name in needed]
    inputs = [i for i in graph.input if i.name not in OVERRIDE_DEFAULTS]
    initializers += [no_override_constant(i) for i in graph.input if i.name in OVERRIDE_DEFAULTS and i.name in needed]
    outputs = [o for o in graph.output if o.name in KEPT_OUTPUTS]
    value_info = [v for v in graph.value_info if v.name in needed]
    cut = helper.make_graph(kept, graph.name + "_router_only", inputs, outputs, initializers, value_info=value_info)
    out = helper.make_model(cut, opset_imports=model.opset_import, producer_name="moe-lab router_only.py")
    out.ir_version = model.ir_version
    out.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(out)
    return out


if __name__ == "__main__":
    for path in sys.argv[1:]:
        model = onnx.load(path)
        cut = router_only(model)
        target = path[: -len(".onnx")] + ".router.onnx"
        onnx.save(cut, target)
        print(f"{target}: {len(cut.graph.node)} of {len(model.graph.node)} nodes, {len(cut.SerializeToString()) / 1e6:.1f} MB")
