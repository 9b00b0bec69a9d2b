#!/usr/bin/env python3
"""The reference peer for the pipeline benchmark (bench/pipeline.py): the digits two-stage
pipeline the way a team writes it today, as glue code in the backend.

FastAPI + uvicorn (one worker) + onnxruntime, JSON only, like bench/peer/app.py. One endpoint,
`POST /v2/models/grouped/infer`, takes raw UINT8 pixels [N,64] (input `image`), applies the
models' preprocessing contract by hand (float32, times 1/16: what the fixtures' manifests
declare), runs the router, sends each row to the classifier of its group (0-3, 4-6, 7-9), puts
the answers back in row order and returns `group`, `label` and `probabilities` (these only
when every row took the same classifier: the classes differ in number). It is what registryd's
pipeline.json does (docs/PIPELINES.md), written the ordinary way: no deliberate slowness, no
special optimisation.

    PEER_ROUTER=Tests/Fixtures/models/digits_router.onnx \
    PEER_GROUPS=Tests/Fixtures/models/digits_group0.onnx,...group1.onnx,...group2.onnx \
        .venv-bench/bin/python bench/peer/pipeline_app.py --host 127.0.0.1 --port 8082

Environment: PEER_ROUTER and PEER_GROUPS (required), PEER_SCALE (the contract's scale,
default 0.0625), PEER_THREADS (intra-op threads per session, default 1: these models are tiny,
and registryd runs models under 16 MiB on one thread too).
"""
import argparse
import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

NUMPY_TO_V2 = {np.dtype(np.int64): "INT64", np.dtype(np.float32): "FP32", np.dtype(np.int32): "INT32"}


def session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


threads = int(os.environ.get("PEER_THREADS", "1"))
router = session(os.environ["PEER_ROUTER"], threads)
groups = [session(path, threads) for path in os.environ["PEER_GROUPS"].split(",")]
scale = np.float32(float(os.environ.get("PEER_SCALE", "0.0625")))
app = FastAPI()


def error(status, message):
    return JSONResponse(status_code=status, content={"error": message})


def v2(name, arr):
    arr = np.asarray(arr)
    return {"name": name, "datatype": NUMPY_TO_V2.get(arr.dtype, "BYTES"), "shape": list(arr.shape), "data": arr.flatten().tolist()}


@app.get("/v2/health/ready")
async def ready():
    return {"ready": True}


@app.post("/v2/models/grouped/infer")
async def infer(request: Request):
    try:
        body = await request.json()
        tensor = next(t for t in body["inputs"] if t["name"] == "image")
        if tensor["datatype"] != "UINT8":
            return error(400, f"input 'image' takes UINT8 raw pixels, not {tensor['datatype']}")
        pixels = np.asarray(tensor["data"], dtype=np.uint8).reshape(tensor["shape"])
    except (ValueError, KeyError, TypeError, StopIteration) as e:
        return error(400, f"bad request: {e}")
    # The preprocessing contract, by hand; then stage one.
    image = pixels.astype(np.float32) * scale
    group, _ = router.run(["label", "probabilities"], {"input": image})
    group = np.asarray(group).reshape(-1)
    # Stage two: one run per classifier that the rows chose, put back in row order.
    labels = np.empty(len(group), dtype=np.int64)
    probabilities = None
    chosen = np.unique(group)
    for g in chosen:
        if not 0 <= g < len(groups):
            return error(400, f"router chose group {g}, which has no classifier")
        rows = np.nonzero(group == g)[0]
        label, probs = groups[g].run(["label", "probabilities"], {"input": image[rows]})
        labels[rows] = np.asarray(label).reshape(-1)
        if len(chosen) == 1:
            probabilities = probs
    outputs = [v2("group", group), v2("label", labels)]
    if probabilities is not None:
        outputs.append(v2("probabilities", probabilities))
    answer = {"model_name": "grouped", "model_version": "1", "outputs": outputs}
    if "id" in body:
        answer["id"] = body["id"]
    return answer


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_level="warning", access_log=False)
