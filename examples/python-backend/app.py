"""A FastAPI backend that serves predictions from registryd instead of an in-process model.

Before: the web process loaded ``model.onnx`` with onnxruntime at import time, and every deploy
of a new model meant a deploy of the web app. After: registryd owns the model (versions,
promotion, rollback, rollouts, audit trail) and this process sends each prediction to it over a
Unix socket on the same host. There is no extra network hop and no port to secure: the socket's
file permissions decide who may call it.

Two ways to send the same tensor, both KServe v2 / Open Inference Protocol:

- ``POST /predict/features``: the v2 JSON request (``"data": [...]``);
- ``POST /predict/features-binary``: Triton's binary tensor data extension: a JSON header of
  ``Inference-Header-Content-Length`` bytes, then the input as raw little-endian FP32 bytes,
  with the outputs asked for (and parsed back) in binary too. No JSON number formatting on
  either side, which matters for large tensors.

Every answer says which version answered, the SHA-256 of the artifact that ran and registryd's
routing decision (``production``, ``pinned`` or ``split arm N (sticky|random)``), so a response
can always be traced back to the exact model file.

Configuration (environment):

- ``REGISTRY_SOCKET``: registryd's Unix socket (default ``/run/registryd/registryd.sock``);
- ``REGISTRY_MODEL``: the model to call (default ``digits``);
- ``REGISTRY_TIMEOUT``: seconds to wait for registryd (default ``5``).

Run: ``REGISTRY_SOCKET=/run/registryd/registryd.sock uvicorn app:app``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import struct
import uuid
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator, Optional

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

log = logging.getLogger("registry-backend")

DEFAULT_SOCKET = "/run/registryd/registryd.sock"
DEFAULT_MODEL = "digits"

# The digits classifier's signature (GET /v2/models/digits shows it): one FP32 input [-1, 64],
# an INT64 label [-1] and FP32 probabilities [-1, 10].
INPUT_NAME = "input"
LABEL_OUTPUT = "label"
SCORES_OUTPUT = "probabilities"

# Little-endian struct codes of the v2 datatypes that have a fixed size (BYTES and BF16 are
# handled separately: BYTES are length-prefixed, BF16 has no struct code).
_STRUCT_CODES = {
    "BOOL": "?", "UINT8": "B", "INT8": "b", "UINT16": "H", "INT16": "h", "UINT32": "I",
    "INT32": "i", "UINT64": "Q", "INT64": "q", "FP16": "e", "FP32": "f", "FP64": "d",
}

# registryd's status -> ours. Client mistakes keep their status; registryd being unavailable
# stays 503 (retryable); the model failing (500) or anything unexpected is a bad gateway.
_STATUS_MAP = {400: 400, 404: 404, 413: 413, 503: 503, 408: 504, 500: 502}


# --------------------------------------------------------------------------------------------
# Request and response bodies
# --------------------------------------------------------------------------------------------

# A value that FP32 can hold: registryd would turn 1e39 into infinity without a word.
FP32_MAX = 3.4028234663852886e38
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, ge=-FP32_MAX, le=FP32_MAX)]


class PredictRequest(BaseModel):
    """One feature vector: 64 pixel intensities (0 to 16) for the digits classifier."""

    model_config = {"extra": "forbid"}

    features: list[FiniteFloat] = Field(..., description="one row of the model's input")
    version: Optional[int] = Field(
        None, ge=1, description="pin a version (bypasses production, splits and rollouts)"
    )
    routing_key: Optional[str] = Field(
        None, max_length=256,
        description="sticky key for traffic splits and rollouts (e.g. a user id)",
    )


class Prediction(BaseModel):
    label: int
    probabilities: Optional[list[Optional[float]]] = Field(
        None, description="per-class scores; null where the model produced NaN or infinity"
    )
    model: str
    model_version: str
    sha256: Optional[str] = Field(None, description="SHA-256 of the artifact that answered")
    routing: Optional[str] = Field(None, description="registryd's routing decision")
    request_id: str
    transport: str = Field(..., description="'json' or 'binary'")


# --------------------------------------------------------------------------------------------
# Talking to registryd
# --------------------------------------------------------------------------------------------

class RegistryError(Exception):
    """registryd could not be reached or answered with an error; carries our HTTP status."""

    def __init__(self, status: int, message: str, upstream_status: Optional[int] = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.upstream_status = upstream_status


class RegistryClient:
    """A thin KServe v2 client over registryd's Unix socket. One per process (connection pool)."""

    def __init__(self, socket_path: str, model: str, timeout: float):
        self.socket_path = socket_path
        self.model = model
        # retries=1 retries a failed *connect* once (e.g. while registryd restarts); requests
        # that reached the daemon are never retried.
        transport = httpx.AsyncHTTPTransport(uds=socket_path, retries=1)
        # The host in base_url is only what goes into the Host header: the socket decides
        # where the request goes.
        self.http = httpx.AsyncClient(
            transport=transport, base_url="http://registryd", timeout=timeout,
            headers={"User-Agent": "registry-backend-example"},
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def _infer_path(self, version: Optional[int]) -> str:
        if version is None:
            return f"/v2/models/{self.model}/infer"
        return f"/v2/models/{self.model}/versions/{version}/infer"

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise RegistryError(504, f"registryd did not answer {method} {path} in time "
                                     f"({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            # A missing socket file or a refused connection both land here.
            raise RegistryError(503, f"registryd is unreachable on unix socket "
                                     f"{self.socket_path}: {exc}") from exc
        if response.status_code >= 400:
            raise RegistryError(_STATUS_MAP.get(response.status_code, 502),
                                _error_message(response), upstream_status=response.status_code)
        return response

    async def get_json(self, path: str) -> dict[str, Any]:
        return _json_body(await self._send("GET", path))

    async def infer_json(self, rows: list[list[float]], version: Optional[int],
                         routing_key: Optional[str], request_id: str) -> dict[str, Any]:
        """A KServe v2 JSON request; returns the v2 response with outputs decoded by name."""
        width = len(rows[0]) if rows else 0
        body = {
            "id": request_id,
            "inputs": [{
                "name": INPUT_NAME, "datatype": "FP32", "shape": [len(rows), width],
                "data": [x for row in rows for x in row],
            }],
            "outputs": [{"name": LABEL_OUTPUT}, {"name": SCORES_OUTPUT}],
        }
        response = await self._send("POST", self._infer_path(version), json=body,
                                    headers=_routing_headers(routing_key))
        answer = _json_body(response)
        answer["_outputs"] = {o["name"]: o.get("data") for o in answer.get("outputs", [])}
        return answer

    async def infer_binary(self, rows: list[list[float]], version: Optional[int],
                           routing_key: Optional[str], request_id: str) -> dict[str, Any]:
        """The same request with Triton's binary tensor data extension, both ways."""
        width = len(rows[0]) if rows else 0
        flat = [x for row in rows for x in row]
        tensor = struct.pack(f"<{len(flat)}f", *flat)  # little-endian FP32, row-major
        header = json.dumps({
            "id": request_id,
            "inputs": [{
                "name": INPUT_NAME, "datatype": "FP32", "shape": [len(rows), width],
                "parameters": {"binary_data_size": len(tensor)},
            }],
            "outputs": [
                {"name": LABEL_OUTPUT, "parameters": {"binary_data": True}},
                {"name": SCORES_OUTPUT, "parameters": {"binary_data": True}},
            ],
        }, separators=(",", ":")).encode()
        headers = {
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
            **_routing_headers(routing_key),
        }
        response = await self._send("POST", self._infer_path(version),
                                    content=header + tensor, headers=headers)
        return parse_binary_response(response.headers, response.content)


def _routing_headers(routing_key: Optional[str]) -> dict[str, str]:
    return {"X-Routing-Key": routing_key} if routing_key else {}


def _error_message(response: httpx.Response) -> str:
    """registryd's errors are {"error": "<one sentence>"}; fall back to the raw text."""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"]
    except ValueError:
        pass
    text = response.text.strip()[:500]
    return f"registryd answered {response.status_code}" + (f": {text}" if text else "")


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise RegistryError(502, f"registryd sent a body that is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise RegistryError(502, "registryd sent JSON that is not an object")
    return body


def decode_tensor(datatype: str, raw: bytes) -> list[Any]:
    """Decode one binary output (little-endian, row-major) into a flat list."""
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise RegistryError(502, "truncated BYTES element in registryd's binary output")
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            if offset + length > len(raw):
                raise RegistryError(502, "truncated BYTES element in registryd's binary output")
            items.append(raw[offset:offset + length])
            offset += length
        return items
    if datatype == "BF16":  # the upper half of an FP32
        count = len(raw) // 2
        return [struct.unpack("<f", b"\0\0" + raw[2 * i:2 * i + 2])[0] for i in range(count)]
    code = _STRUCT_CODES.get(datatype)
    if code is None:
        raise RegistryError(502, f"registryd sent an output of unknown datatype {datatype!r}")
    size = struct.calcsize(code)
    if len(raw) % size:
        raise RegistryError(502, f"{len(raw)} bytes is not a whole number of {datatype} elements")
    return list(struct.unpack(f"<{len(raw) // size}{code}", raw))


def parse_binary_response(headers: httpx.Headers, content: bytes) -> dict[str, Any]:
    """Split a binary-extension response into its JSON header and decoded outputs.

    Outputs asked for with ``binary_data`` carry ``parameters.binary_data_size`` and their bytes
    follow the JSON header in output order; the others keep ``data`` in the JSON.
    """
    length = headers.get("Inference-Header-Content-Length")
    if length is None:  # registryd may answer in plain JSON
        try:
            answer = json.loads(content)
        except ValueError as exc:
            raise RegistryError(502, f"registryd sent a body that is not JSON: {exc}") from exc
        answer["_outputs"] = {o["name"]: o.get("data") for o in answer.get("outputs", [])}
        return answer
    try:
        header_size = int(length)
        answer = json.loads(content[:header_size])
    except ValueError as exc:
        raise RegistryError(502, f"registryd sent a malformed binary response header: {exc}") from exc
    offset = header_size
    outputs: dict[str, Any] = {}
    for output in answer.get("outputs", []):
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            outputs[output["name"]] = output.get("data")
            continue
        if offset + size > len(content):
            raise RegistryError(502, f"registryd's binary output {output['name']!r} runs past "
                                     f"the end of the response")
        outputs[output["name"]] = decode_tensor(output["datatype"], content[offset:offset + size])
        offset += size
    if offset != len(content):
        raise RegistryError(502, f"{len(content) - offset} unexpected bytes after the outputs")
    answer["_outputs"] = outputs
    return answer


def _prediction(answer: dict[str, Any], model: str, request_id: str, transport: str) -> Prediction:
    outputs = answer["_outputs"]
    labels = outputs.get(LABEL_OUTPUT)
    if not labels:
        raise RegistryError(502, f"registryd's answer has no {LABEL_OUTPUT!r} output")
    scores = outputs.get(SCORES_OUTPUT)
    parameters = answer.get("parameters") or {}
    return Prediction(
        label=int(labels[0]),
        # JSON has no NaN: registryd writes non-finite floats as null.
        probabilities=[x if x is not None and math.isfinite(x) else None for x in scores]
        if scores is not None else None,
        model=answer.get("model_name", model),
        model_version=str(answer.get("model_version", "")),
        sha256=parameters.get("sha256"),
        routing=parameters.get("routing"),
        request_id=str(answer.get("id", request_id)),
        transport=transport,
    )


# --------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------

def create_app(socket_path: Optional[str] = None, model: Optional[str] = None,
               timeout: Optional[float] = None) -> FastAPI:
    """Build the app; arguments override the environment (tests use them)."""
    socket_path = socket_path or os.environ.get("REGISTRY_SOCKET", DEFAULT_SOCKET)
    model = model or os.environ.get("REGISTRY_MODEL", DEFAULT_MODEL)
    timeout = timeout if timeout is not None else float(os.environ.get("REGISTRY_TIMEOUT", "5"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One client (and connection pool) for the whole process. Startup does not require
        # registryd to be up: /healthz reports it, and requests fail with 503 until it is.
        app.state.registry = RegistryClient(socket_path, model, timeout)
        log.info("using registryd on unix socket %s, model %s", socket_path, model)
        try:
            yield
        finally:
            await app.state.registry.aclose()

    app = FastAPI(title="registryd backend example", lifespan=lifespan)

    @app.exception_handler(RegistryError)
    async def registry_error(request: Request, exc: RegistryError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc.message)
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default handler echoes the offending input, and cannot render a NaN that
        # Python's JSON parser let through (it fails with a 500): report where and why only.
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    def registry(request: Request) -> RegistryClient:
        return request.app.state.registry

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        """Ready when registryd is ready (all models loaded) and serves our model."""
        client = registry(request)
        try:
            server = await client.get_json("/v2/health/ready")
            model_ready = await client.get_json(f"/v2/models/{client.model}/ready")
        except RegistryError as exc:
            raise HTTPException(503, f"registryd not ready: {exc.message}") from exc
        if not server.get("ready") or not model_ready.get("ready"):
            raise HTTPException(503, f"model {client.model!r} is not ready in registryd")
        return {"status": "ok", "registry_socket": client.socket_path, "model": client.model}

    @app.post("/predict/features", response_model=Prediction)
    async def predict_features(body: PredictRequest, request: Request) -> Prediction:
        """Classify one feature vector with a KServe v2 JSON request."""
        client = registry(request)
        request_id = str(uuid.uuid4())
        answer = await client.infer_json([body.features], body.version, body.routing_key, request_id)
        return _prediction(answer, client.model, request_id, "json")

    @app.post("/predict/features-binary", response_model=Prediction)
    async def predict_features_binary(body: PredictRequest, request: Request) -> Prediction:
        """The same, with the tensor and the outputs sent as raw little-endian bytes."""
        client = registry(request)
        request_id = str(uuid.uuid4())
        answer = await client.infer_binary([body.features], body.version, body.routing_key, request_id)
        return _prediction(answer, client.model, request_id, "binary")

    return app


app = create_app()
