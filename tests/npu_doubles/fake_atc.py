"""Fake ATC (reference §5): validates a command line the way ATC does and writes a fake OM.

`bin/atc` runs main(); tests may call main(argv) in-process. Everything goes to stdout, as
ATC prints it. Exit status 0 on success, 1 on any failure (no .om is written then).
Env: FAKE_ATC_OM_SUFFIX (default "_linux_x86_64"; "" gives <output>.om), FAKE_ATC_FAIL=<msg>
(fail after 60 numbered progress lines).
"""
from __future__ import annotations

import os
import re
import sys

import fake_om
import numpy as np

START = "ATC start working now, please wait for a moment."
SUCCESS = "ATC run success, welcome to the next use."
FAILED = "ATC run failed, Please check the detail log, Try 'atc --help' for more information"

SOC_VERSIONS = (["Ascend310"] + [f"Ascend310P{i}" for i in range(1, 6)]
                + [f"Ascend310B{i}" for i in range(1, 5)] + ["Ascend910", "Ascend910A"]
                + [f"Ascend910B{i}" for i in range(1, 5)]
                + [f"Ascend910_93{n}" for n in ("62", "72", "81", "82", "91", "92")])
PRECISION_MODES = ["force_fp16", "allow_fp32_to_fp16", "must_keep_origin_dtype",
                   "allow_mix_precision", "allow_mix_precision_fp16", "force_fp32",
                   "cube_fp16in_fp32out", "allow_mix_precision_bf16", "allow_fp32_to_bf16"]
PRECISION_MODES_V2 = ["fp16", "origin", "cube_fp16in_fp32out", "mixed_float16",
                      "mixed_bfloat16", "cube_hif8", "mixed_hif8"]
IMPL_MODES = ["high_performance", "high_precision", "high_precision_for_all",
              "high_performance_for_all"]
LOG_LEVELS = ["debug", "info", "warning", "error", "null"]
INPUT_FORMATS = ["NCHW", "NHWC", "ND"]
OUTPUT_TYPES = {"FP32": fake_om.ACL_FLOAT, "FP16": fake_om.ACL_FLOAT16}
OPSETS = range(9, 19)  # CANN 7.0 docs: ONNX opsets 9-18
MAX_GEARS = 100

# options ATC has that change nothing in this double; anything else is an unknown flag
ACCEPTED = {"framework", "model", "output", "input_format", "input_shape", "dynamic_dims",
            "dynamic_batch_size", "soc_version", "precision_mode", "precision_mode_v2",
            "op_select_implmode", "optypelist_for_implmode", "keep_dtype", "out_nodes",
            "output_type", "log", "mode", "weight", "host_env_os", "host_env_cpu",
            "input_fp16_nodes", "fusion_switch_file", "buffer_optimize", "op_debug_level",
            "enable_small_channel", "status_check", "core_type", "aicore_num",
            "virtual_type", "dynamic_image_size", "insert_op_conf", "input_shape_range"}
UNSUPPORTED = {"dynamic_image_size": "dynamic image size (dymHW) models",
               "insert_op_conf": "AIPP", "input_shape_range": "dynamic shape models"}


class AtcError(Exception):
    """One or more ATC-style error lines."""


def invalid(option: str, value, reason: str) -> AtcError:
    return AtcError(f"E10001: Value [{value}] for parameter [--{option}] is invalid. "
                    f"Reason: {reason}\n        Solution: Try again with a valid argument.")


def parse_argv(argv):
    """--opt=value or --opt value (gflags also takes a single dash)."""
    opts, i = {}, 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg in ("-", "--"):
            raise AtcError(f"ERROR: invalid command line argument '{arg}'")
        name = arg.lstrip("-")
        if "=" in name:
            name, value = name.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value = argv[i + 1]
            i += 1
        else:
            value = ""
        if name in ("h", "help"):
            opts["help"] = ""
        elif name == "version":  # gflags' --version: prints and exits 0 (FAKE_ATC_VERSION)
            opts["version"] = ""
        elif name not in ACCEPTED:
            raise AtcError(f"ERROR: unknown command line flag '{name}'")
        else:
            opts[name] = value
        i += 1
    return opts


def choice(opts, name, allowed, default):
    value = opts.get(name, default)
    if value not in allowed:
        raise invalid(name, value, f"value must be one of {', '.join(allowed)}.")
    return value


def parse_int(text: str, option: str) -> int:
    text = text.strip()
    body = text.removeprefix("-")
    if not body.isdigit():
        raise invalid(option, text, "a dimension must be an integer.")
    return int(text)


def parse_input_shape(text: str) -> dict[str, list[int]]:
    shapes = {}
    for part in text.split(";"):
        name, sep, dims = part.strip().rpartition(":")
        if not sep or not name:
            raise invalid("input_shape", text, 'the format is "name:d0,d1;name2:d0".')
        if "~" in dims:
            raise invalid("input_shape", text, "shape ranges (dynamic shape) are not "
                          "supported by this fake ATC.")
        values = [parse_int(d, "input_shape") for d in dims.split(",")] if dims.strip() else []
        if any(v == 0 or v < -1 for v in values):
            raise invalid("input_shape", text, f"dims of [{name}] must be > 0 or -1.")
        if name in shapes:
            raise invalid("input_shape", text, f"input [{name}] is given twice.")
        shapes[name] = values
    return shapes


def parse_gears(text: str, option: str, per_gear: int | None) -> list[list[int]]:
    gears = []
    for part in text.split(";" if option == "dynamic_dims" else ","):
        values = [parse_int(v, option) for v in part.split(",")] if option == "dynamic_dims" \
            else [parse_int(part, option)]
        if any(v <= 0 for v in values):
            raise invalid(option, text, "gear values must be positive integers.")
        if per_gear is not None and len(values) != per_gear:
            raise invalid(option, text, f"each gear needs exactly {per_gear} value(s), one per "
                          "-1 in --input_shape.")
        gears.append(values)
    if not 2 <= len(gears) <= MAX_GEARS:
        raise invalid(option, text, f"the number of gears must be in [2, {MAX_GEARS}].")
    if len({tuple(g) for g in gears}) != len(gears):
        raise invalid(option, text, "gears must be distinct.")
    return gears


def load_onnx(path: str):
    import onnx
    if not path:
        raise AtcError("E10004: Value for parameter [--model] cannot be empty.")
    if not os.path.isfile(path):
        raise invalid("model", path, "the file does not exist.")
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - any parse failure is ATC's E19999
        raise AtcError(f"E19999: Inner Error! Failed to parse the ONNX model [{path}]: {exc}")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset not in OPSETS:
        raise AtcError(f"E16005: The model opset version [{opset}] is not supported; "
                       f"supported: {OPSETS.start}-{OPSETS.stop - 1}.")
    return model


def graph_inputs(model):
    """Graph inputs that are not initializers: name -> (onnx elem type, dims or None per axis)."""
    inits = {t.name for t in model.graph.initializer}
    out = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim] \
            if tt.HasField("shape") else None
        out[vi.name] = (tt.elem_type, dims)
    return out


def resolve_shapes(model, opts):
    """name -> dims (with -1s), in graph input order; checks --input_shape against the graph."""
    inputs = graph_inputs(model)
    given = parse_input_shape(opts["input_shape"]) if opts.get("input_shape") else {}
    for name in given:
        if name not in inputs:
            raise AtcError(f"E10016: Input parameter [--input_shape]'s opname [{name}] is not "
                           "exist in model.\n        Solution: Check the input node names.")
    shapes = {}
    for name, (elem, dims) in inputs.items():
        if elem not in fake_om.ONNX_TO_ACL:
            raise AtcError(f"E19999: Inner Error! Input [{name}] has an unsupported data type "
                           f"[{elem}].")
        if name in given:
            want = given[name]
            if dims is not None and len(dims) != len(want):
                raise invalid("input_shape", opts["input_shape"], f"input [{name}] has rank "
                              f"{len(dims)} in the model but {len(want)} dims were given.")
            for axis, (m, w) in enumerate(zip(dims or [], want)):
                if m not in (None, 0) and w != m:
                    raise invalid("input_shape", opts["input_shape"], f"dim {axis} of [{name}] "
                                  f"is fixed to {m} in the model.")
            shapes[name] = want
        elif dims is None or any(d in (None, 0) for d in dims):
            raise invalid("input_shape", opts.get("input_shape", ""), f"input [{name}] has a "
                          "dynamic shape in the model; give it in --input_shape.")
        else:
            shapes[name] = dims
    return shapes


def resolve_gears(shapes, opts, input_format):
    """-> (dynamic kind or None, dynamic values per gear, full concatenated dims per gear)."""
    n_unknown = sum(d == -1 for dims in shapes.values() for d in dims)
    dd, db = opts.get("dynamic_dims"), opts.get("dynamic_batch_size")
    if dd is not None and db is not None:
        raise AtcError("E10001: Value for parameter [--dynamic_dims] is invalid. Reason: "
                       "--dynamic_dims and --dynamic_batch_size are mutually exclusive.")
    if dd is None and db is None:
        if n_unknown:
            raise invalid("input_shape", opts.get("input_shape"), "-1 needs --dynamic_dims or "
                          "--dynamic_batch_size (dynamic shape is not supported by this double).")
        return None, [], []
    if n_unknown == 0:
        option = "dynamic_dims" if dd is not None else "dynamic_batch_size"
        raise invalid(option, dd if dd is not None else db, "--input_shape has no -1.")
    if dd is not None:
        if input_format != "ND":
            raise invalid("input_format", input_format, "--dynamic_dims requires ND.")
        kind, values = "dims", parse_gears(dd.replace(" ", ""), "dynamic_dims", n_unknown)
    else:
        if any(-1 in dims[1:] for dims in shapes.values()):
            raise invalid("input_shape", opts.get("input_shape"), "with --dynamic_batch_size "
                          "only the batch axis (axis 0) may be -1.")
        kind, values = "batch", parse_gears(db.replace(" ", ""), "dynamic_batch_size", None)
    gears = []
    for gear in values:
        it = iter(gear)
        flat = []
        for dims in shapes.values():
            for d in dims:
                flat.append((gear[0] if kind == "batch" else next(it)) if d == -1 else d)
        gears.append(flat)
    return kind, values, gears


def producers(model) -> dict[str, tuple[str, int]]:
    """Tensor -> (op, output index) of the node producing it. ATC's ONNX parser names a node that has
    no name; this double calls it "<op_type>_<position>" (not verified against ATC)."""
    out = {}
    for position, node in enumerate(model.graph.node):
        op = node.name or f"{node.op_type}_{position}"
        for index, tensor in enumerate(node.output):
            if tensor:
                out[tensor] = (op, index)
    return out


def parse_out_nodes(model, text: str) -> tuple[str, list[str]]:
    """--out_nodes -> (form, tensor names in the order given).

    Two forms (ATC doc atctool_0069, CANN 6.0.1; reference Corrections): the node form
    "node:0;node2:1" and, for ONNX, the output-name form "prob;label". An entry ending in ":<digits>"
    is read as the node form; mixing the forms is refused here (what ATC does with a mix is not known).
    """
    nodes = {n.name: n for n in model.graph.node if n.name}
    made = producers(model)
    entries = [e.strip() for e in text.split(";")]
    if any(not e for e in entries):
        raise invalid("out_nodes", text, 'the format is "node:0;node2:1" or "output1;output2".')
    node_form = [bool(re.fullmatch(r".+:\d+", e)) for e in entries]
    if any(node_form) and not all(node_form):
        raise invalid("out_nodes", text, 'use one form: "node:0;node2:1" or "output1;output2".')
    names = []
    if all(node_form):
        for entry in entries:
            node, _, idx = entry.rpartition(":")
            if node not in nodes:
                raise AtcError(f"E10016: Input parameter [--out_nodes]'s opname [{node}] is not "
                               "exist in model.\n        Solution: Check the node names.")
            if int(idx) >= len(nodes[node].output):
                raise invalid("out_nodes", text, f"node [{node}] has "
                              f"{len(nodes[node].output)} output(s).")
            names.append(nodes[node].output[int(idx)])
        form = "node"
    else:
        for entry in entries:
            if entry not in made:
                raise AtcError(f"E10016: Input parameter [--out_nodes]'s output name [{entry}] is "
                               "not exist in model.\n        Solution: Check the output names.")
            names.append(entry)
        form = "output_name"
    if len(set(names)) != len(names):
        raise invalid("out_nodes", text, "an output is selected twice.")
    return form, names


def om_output_names(model, tensors, form) -> list[str]:
    """The OM's names of the selected tensors, as ATC gives them for ONNX (reference Corrections):
    "<op>:<idx>:<tensor>" without --out_nodes or with its output-name form, "<op>:<idx>" with the
    node form. A graph output no node produces (an input passed through) keeps its plain name."""
    made = producers(model)
    names = []
    for tensor in tensors:
        if tensor not in made:
            names.append(tensor)
            continue
        op, index = made[tensor]
        names.append(f"{op}:{index}" if form == "node" else f"{op}:{index}:{tensor}")
    return names


def select_outputs(model, opts):
    """Reorder/select the graph outputs as the OM will have them; returns (their tensor names, the
    --out_nodes form or None). Reads the graph before it is changed."""
    import onnx
    graph = model.graph
    if not opts.get("out_nodes"):
        form, names = None, [o.name for o in graph.output][::-1]  # "om has random order" (ModelZoo Jasper)
    else:
        form, names = parse_out_nodes(model, opts["out_nodes"])
    known = {o.name: o for o in graph.output}
    if any(n not in known for n in names):
        inferred = onnx.shape_inference.infer_shapes(model)
        known.update({v.name: v for v in inferred.graph.value_info})
    missing = [n for n in names if n not in known or not known[n].type.tensor_type.elem_type]
    if missing:
        raise AtcError(f"E19999: Inner Error! Cannot infer the type of output(s) {missing}.")
    chosen = [onnx.ValueInfoProto() for _ in names]
    for vi, name in zip(chosen, names):
        vi.CopyFrom(known[name])
    del graph.output[:]
    graph.output.extend(chosen)
    return names, form


def output_types(opts, names, model) -> dict[str, int]:
    """Output name -> forced aclDataType, from --output_type."""
    text = opts.get("output_type")
    if not text:
        return {}
    if ":" not in text:
        if text not in OUTPUT_TYPES:
            raise invalid("output_type", text, f"must be one of {', '.join(OUTPUT_TYPES)} in this "
                          "double.")
        return {n: OUTPUT_TYPES[text] for n in names}
    if not opts.get("out_nodes"):
        raise invalid("output_type", text, '"node:index:type" needs --out_nodes.')
    nodes = {n.name: n for n in model.graph.node if n.name}
    forced = {}
    for entry in text.split(";"):
        parts = entry.strip().split(":")
        if len(parts) != 3 or not parts[1].isdigit() or parts[2] not in OUTPUT_TYPES:
            raise invalid("output_type", text, 'the format is "node:0:FP16;node2:1:FP32".')
        node = nodes.get(parts[0])
        tensor = node.output[int(parts[1])] if node and int(parts[1]) < len(node.output) else None
        if tensor not in names:
            raise invalid("output_type", text, f"[{parts[0]}:{parts[1]}] is not in --out_nodes.")
        forced[tensor] = OUTPUT_TYPES[parts[2]]
    return forced


def zero_run(model_bytes, shapes_per_run, input_types):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
        results = []
        for shapes in shapes_per_run:
            feeds = {name: np.zeros(shape, fake_om.ACL_TO_NUMPY[input_types[name]])
                     for name, shape in shapes.items()}
            results.append([np.asarray(r) for r in sess.run(None, feeds)])
        return results
    except Exception as exc:  # noqa: BLE001 - ATC reports any compile failure this way
        raise AtcError(f"E19999: Inner Error! Model compilation failed: {exc}")


def build(opts) -> str:
    """Validate everything, write the OM; returns its path."""
    framework = opts.get("framework")
    if framework is None or framework == "":
        raise AtcError("E10004: Value for parameter [--framework] cannot be empty.")
    if framework != "5":
        raise invalid("framework", framework, "this fake ATC converts ONNX only (--framework=5).")
    if opts.get("mode", "0") != "0":
        raise invalid("mode", opts["mode"], "only --mode=0 (build an om) is faked.")
    for name, what in UNSUPPORTED.items():
        if name in opts:
            raise invalid(name, opts[name], f"{what} are not supported by this fake ATC.")
    output = opts.get("output", "")
    if not output:
        raise AtcError("E10004: Value for parameter [--output] cannot be empty.")
    if not opts.get("soc_version"):
        raise AtcError("E10004: Value for parameter [--soc_version] cannot be empty.")
    choice(opts, "soc_version", SOC_VERSIONS, None)
    if "precision_mode" in opts and "precision_mode_v2" in opts:
        raise invalid("precision_mode_v2", opts["precision_mode_v2"],
                      "--precision_mode and --precision_mode_v2 cannot both be given.")
    precision = choice(opts, "precision_mode", PRECISION_MODES, "force_fp16")
    if "precision_mode_v2" in opts:
        choice(opts, "precision_mode_v2", PRECISION_MODES_V2, None)
    impl = choice(opts, "op_select_implmode", IMPL_MODES, "high_performance")
    choice(opts, "log", LOG_LEVELS, "null")
    input_format = choice(opts, "input_format", INPUT_FORMATS, "NCHW")  # ATC's default is NCHW
    if opts.get("keep_dtype") and not os.path.isfile(opts["keep_dtype"]):
        raise invalid("keep_dtype", opts["keep_dtype"], "the file does not exist.")
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        raise invalid("output", output, f"the directory [{out_dir}] does not exist.")

    model = load_onnx(opts.get("model", ""))
    source_types = {n: fake_om.ONNX_TO_ACL.get(e) for n, (e, _) in graph_inputs(model).items()}
    shapes = resolve_shapes(model, opts)
    kind, values, gears = resolve_gears(shapes, opts, input_format)
    names, form = select_outputs(model, opts)
    om_names = om_output_names(model, names, form)
    forced = output_types(opts, names, model)
    model_bytes = model.SerializeToString()

    input_types = {n: source_types[n] for n in shapes}
    runs = []
    for gear in gears or [None]:
        flat = list(gear) if gear else None
        per_input = {}
        for name, dims in shapes.items():
            per_input[name] = flat[:len(dims)] if flat is not None else dims
            flat = flat[len(dims):] if flat is not None else None
        runs.append(per_input)
    results = zero_run(model_bytes, runs, input_types)

    fmt = fake_om.FORMAT_BY_NAME[input_format]
    inputs = []
    for name, dims in shapes.items():
        size = max(fake_om.nbytes(r[name], input_types[name]) for r in runs)
        inputs.append({"name": name, "dtype": input_types[name], "format": fmt,
                       "dims": list(dims), "size": size, "hidden": False})
    if gears:
        k = len(gears[0])
        inputs.append({"name": fake_om.MBATCH_NAME, "dtype": fake_om.ACL_INT64,
                       "format": fake_om.FORMAT_ND, "dims": [k], "size": 8 * k, "hidden": True})
    outputs = []
    for i, name in enumerate(names):
        src = fake_om.acl_dtype_of(results[0][i].dtype)
        if src is None:
            raise AtcError(f"E19999: Inner Error! Output [{name}] has an unsupported data type "
                           f"[{results[0][i].dtype}].")
        dtype = src
        if name in forced and src in (fake_om.ACL_FLOAT, fake_om.ACL_FLOAT16, fake_om.ACL_DOUBLE):
            dtype = forced[name]
        per_gear = [list(r[i].shape) for r in results]
        sizes = [fake_om.nbytes(d, dtype) for d in per_gear]
        big = int(np.argmax(sizes))
        outputs.append({"name": om_names[i], "tensor": name, "dtype": dtype, "format": fake_om.FORMAT_ND,
                        "dims": per_gear[big], "size": sizes[big],
                        "gear_dims": per_gear if gears else []})
    header = {
        "format": fake_om.FORMAT, "soc_version": opts["soc_version"], "framework": 5,
        "precision_mode": precision, "precision_mode_v2": opts.get("precision_mode_v2"),
        "op_select_implmode": impl, "input_format": input_format,
        "output_type": opts.get("output_type"), "out_nodes": opts.get("out_nodes"), "out_nodes_form": form,
        "dynamic": kind, "inputs": inputs, "gears": gears, "dynamic_values": values,
        "outputs": outputs,
        "source": {"model": os.path.abspath(opts["model"]),
                   "sha256": fake_om.sha256_file(opts["model"])},
    }
    suffix = os.environ.get("FAKE_ATC_OM_SUFFIX", "_linux_x86_64")
    path = f"{output}{suffix}.om"
    tmp = f"{path}.tmp{os.getpid()}"
    fake_om.write(tmp, header, model_bytes)
    os.replace(tmp, path)
    return path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        opts = parse_argv(argv)
    except AtcError as exc:
        print(exc)
        print(FAILED)
        return 1
    if "help" in opts:
        print("usage: atc --framework=5 --model=<x.onnx> --output=<base> --soc_version=<chip> "
              "[--input_format=ND|NCHW|NHWC] [--input_shape=...] [--dynamic_dims=...] ... "
              "(fake ATC of the ascend-asr test doubles)")
        return 0
    if "version" in opts:
        print(f"atc version {os.environ.get('FAKE_ATC_VERSION', '7.0.RC1')} (fake ATC of the ascend-asr test doubles)")
        return 0
    print(START, flush=True)
    fail = os.environ.get("FAKE_ATC_FAIL")
    if fail:
        for i in range(1, 61):
            print(f"[fake atc] progress {i:02d}/60: building the graph")
        print(f"E19999: Inner Error! {fail}")
        print(FAILED)
        return 1
    try:
        build(opts)
    except AtcError as exc:
        print(exc)
        print(FAILED)
        return 1
    print(SUCCESS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
