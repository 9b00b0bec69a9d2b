#!/usr/bin/env python3
"""The reference peer for the benchmarks: KServe v2 inference the way a team writes it today.

FastAPI + uvicorn (one worker) + onnxruntime, JSON only. It is the baseline registryd is
compared with, so it is meant to be a plain, ordinary implementation: no deliberate slowness,
no special optimisation.

    PEER_MODELS=digits=/path/digits.onnx,other=/path/other.onnx \
        .venv-bench/bin/python bench/peer/app.py --host 127.0.0.1 --port 8081
    # or: cd bench/peer && PEER_MODELS=... python -m uvicorn app:app --port 8081

Environment: PEER_MODELS (required, name=path pairs separated by commas), PEER_THREADS
(onnxruntime intra-op threads per session, default 2), PEER_HOST / PEER_PORT (defaults for
--host / --port when run as a script).
"""
import argparse
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

# KServe v2 datatype <-> numpy dtype. BYTES (strings) and BF16 are not handled by this peer.
V2_TO_NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}
NUMPY_TO_V2 = {np.dtype(t): name for name, t in V2_TO_NUMPY.items()}


def load_sessions(spec, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    sessions = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, path = item.partition("=")
        if not name or not path:
            raise SystemExit(f"PEER_MODELS: expected name=/path/model.onnx, got {item!r}")
        sessions[name] = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    if not sessions:
        raise SystemExit("PEER_MODELS is empty: set it to name=/path/model.onnx[,name2=...]")
    return sessions


sessions = load_sessions(os.environ.get("PEER_MODELS", ""), int(os.environ.get("PEER_THREADS", "2")))
app = FastAPI()


def error(status, message):
    return JSONResponse(status_code=status, content={"error": message})


@app.get("/v2/health/ready")
async def ready():
    return {"ready": True}


@app.post("/v2/models/{model}/infer")
async def infer(model: str, request: Request):
    session = sessions.get(model)
    if session is None:
        return error(404, f"unknown model {model!r}")
    try:
        body = await request.json()
        feed = {}
        for tensor in body["inputs"]:
            dtype = V2_TO_NUMPY.get(tensor["datatype"])
            if dtype is None:
                return error(400, f"unsupported datatype {tensor['datatype']!r}")
            feed[tensor["name"]] = np.asarray(tensor["data"], dtype=dtype).reshape(tensor["shape"])
        names = [o["name"] for o in body["outputs"]] if body.get("outputs") else None
    except (ValueError, KeyError, TypeError) as e:  # bad JSON, missing fields, wrong shape
        return error(400, f"bad request: {e}")
    known_outputs = {o.name for o in session.get_outputs()}
    if names and not known_outputs.issuperset(names):
        return error(400, f"unknown output(s) {sorted(set(names) - known_outputs)}")

    # The model runs right here on the event loop thread, as the usual `async def` endpoint
    # does: with one worker and sub-millisecond models that is what most simple services do, and
    # a hop to run_in_threadpool would add a thread handoff per request for no gain here.
    try:
        results = session.run(names, feed)
    except (ValueError,  # missing or unknown input name (raised by onnxruntime's Python layer)
            ort.capi.onnxruntime_pybind11_state.InvalidArgument,  # wrong element type or rank
            ort.capi.onnxruntime_pybind11_state.Fail) as e:
        return error(400, str(e))

    outputs = []
    for name, value in zip(names or [o.name for o in session.get_outputs()], results):
        arr = np.asarray(value)
        outputs.append({"name": name, "datatype": NUMPY_TO_V2.get(arr.dtype, "BYTES"),
                        "shape": list(arr.shape), "data": arr.flatten().tolist()})
    answer = {"model_name": model, "model_version": "1", "outputs": outputs}
    if "id" in body:
        answer["id"] = body["id"]
    return answer


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("PEER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PEER_PORT", "8081")))
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="warning", access_log=False)
