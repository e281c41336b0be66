"""The HTTP server: `lmtune serve RUN` wraps a `Predictor` in a FastAPI app with limits, an optional API key
and micro-batching across clients. Every error a client can cause is a 4xx JSON answer, never a crash."""

from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import JSONResponse

from lmtune.data.stream import input_frame
from lmtune.errors import UserError
from lmtune.serving.batcher import Batcher, Overloaded
from lmtune.trained.predictor import Predictor
from lmtune.version import __version__

log = logging.getLogger("lmtune.serve")

# One input: a text, or an object with the task's fields ({"text", "text_pair"}, {"question", "context"},
# {"tokens": [...]} for token classification).
Input = str | Annotated[dict[str, str | list[str]], Field(min_length=1)]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[Input] | None = None
    input: Input | None = None

    @model_validator(mode="after")
    def one_of(self) -> PredictRequest:
        if (self.inputs is None) == (self.input is None):
            raise ValueError('give either "inputs" (a list) or "input" (one item)')
        if self.inputs is not None and not self.inputs:
            raise ValueError('"inputs" is empty: give at least one input')
        return self

    @model_validator(mode="after")
    def valid_text(self) -> PredictRequest:
        # JSON may escape half of a surrogate pair ("\ud83d"), which is no character: the tokenizer would fail.
        for i, item in enumerate(self.items):
            fields = [item] if isinstance(item, str) else list(item.values())
            for value in (v for field in fields for v in ([field] if isinstance(field, str) else field)):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"inputs[{i}] holds a lone surrogate escape (e.g. \\ud83d), which is not "
                                     "text: send whole characters") from None
        return self

    @property
    def items(self) -> list[Input]:
        return self.inputs if self.inputs is not None else [self.input]


class PredictResponse(BaseModel):
    predictions: list[dict]


class KeyCheck:
    """Answers 401 before the body is read (a client without the key costs no parsing), on every path but
    /health."""

    def __init__(self, app, api_key: str):
        self.app, self.api_key = app, api_key.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] == "/health":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"x-api-key", b"")
        if not secrets.compare_digest(given, self.api_key):
            detail = "missing or wrong API key: send it in the X-API-Key header"
            return await JSONResponse({"detail": detail}, status_code=401)(scope, receive, send)
        await self.app(scope, receive, send)


class BodyLimit:
    """Answers 413 to a body over `max_bytes`, by its Content-Length or, when that is absent or wrong, by the
    bytes actually received; the body is read here and replayed to the app."""

    def __init__(self, app, max_bytes: int, exempt: tuple[str, ...] = ()):
        self.app, self.max_bytes, self.exempt = app, max_bytes, exempt  # exempt paths stream and bound their own

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in self.exempt:
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await self._too_large(scope, receive, send)
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # later calls wait for the client to disconnect, as the server's would
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send):
        detail = f"request body too large: at most {self.max_bytes} bytes"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def create_app(model_or_run: str | Path, *, max_batch_size: int = 32, max_wait_ms: float = 5, max_queue: int = 1024,
               max_body_bytes: int = 1_000_000, max_inputs: int = 256, max_chars: int = 10_000,
               api_key: str | None = None, timeout_s: float = 30.0, onnx_variant: str = "fp32",
               docs: bool = False) -> FastAPI:
    """A FastAPI app serving a trained lmtune run or model folder; the model loads now, so a bad path fails here.
    `docs` turns on /docs and /openapi.json (off by default: the docs page loads its scripts from a CDN)."""
    predictor = Predictor(model_or_run, onnx_variant=onnx_variant)
    batcher = Batcher(lambda inputs: predictor.predict(input_frame(inputs), max_batch_size), max_batch_size,
                      max_wait_ms, max_queue)
    limits = {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, "max_queue": max_queue,
              "max_body_bytes": max_body_bytes, "max_inputs": max_inputs, "max_chars": max_chars,
              "timeout_s": timeout_s}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.close()  # finishes queued and running requests before the server exits

    # Clients see the run's name, not where it lies on the server's disk.
    name = _public_name(Path(predictor.model_dir))
    app = FastAPI(title="lmtune", version=__version__, lifespan=lifespan,
                  description=f"Predictions of the {predictor.task.name} model {name}.",
                  docs_url="/docs" if docs else None, redoc_url=None, openapi_url="/openapi.json" if docs else None)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    if api_key is not None:
        app.add_middleware(KeyCheck, api_key=api_key)  # added last, so it runs first
    app.state.predictor, app.state.batcher = predictor, batcher

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "queue": batcher.depth}

    @app.get("/info")
    def info() -> dict:
        labels = predictor.task.labels
        return {"model": name, "task": predictor.task.name,
                **({"labels": labels} if labels else {}), "lmtune": __version__, "limits": limits}

    @app.post("/predict")
    async def predict(request: PredictRequest) -> PredictResponse:
        items = request.items
        if len(items) > max_inputs:
            raise HTTPException(413, f"{len(items)} inputs in one request; at most {max_inputs}: split them")
        _check_lengths(items, max_chars)
        _check_fields(items, predictor.task.input_fields)
        try:
            predictions = await batcher.submit(items, timeout_s)
        except Overloaded as err:
            raise HTTPException(503, str(err)) from None
        except TimeoutError:
            raise HTTPException(504, f"no prediction within {timeout_s:g} s; retry, or send fewer inputs") from None
        except UserError as err:
            raise HTTPException(422, str(err)) from None
        except KeyError as err:  # the tasks read their input fields as table columns: one was not sent
            raise HTTPException(422, f"the inputs lack the field {err}, which a {predictor.task.name} model "
                                     "reads") from None
        except Exception as err:
            log.exception("prediction failed")
            raise HTTPException(500, f"prediction failed ({type(err).__name__}); see the server log") from None
        for row, record in enumerate(predictions, 1):
            if "row" in record:  # numbered within this request, as `lmtune predict` numbers a file's rows
                record["row"] = row
        return PredictResponse(predictions=predictions)

    return app


async def _invalid_request(request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own answer echoes the input, which cannot be written as JSON when the input is the problem (a
    # lone surrogate): where and what is enough for the client.
    return JSONResponse({"detail": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]},
                        status_code=422)


def _public_name(model_dir: Path) -> str:
    return model_dir.parent.name if model_dir.name == "model" else model_dir.name


def _check_lengths(items: list[Input], max_chars: int) -> None:
    for i, item in enumerate(items):
        fields = {"": item} if isinstance(item, str) else item
        for name, value in fields.items():
            size = len(value) if isinstance(value, str) else sum(len(v) for v in value)
            if size > max_chars:
                where = f"inputs[{i}]" + (f".{name}" if name else "")
                raise HTTPException(422, f"{where} is {size} characters long; at most {max_chars}")


def _check_fields(items: list[Input], allowed: tuple[str, ...]) -> None:
    """A field the task does not read would be silently ignored: say so instead."""
    for i, item in enumerate(items):
        unknown = sorted(set(item) - set(allowed)) if isinstance(item, dict) else []
        if unknown:
            raise HTTPException(422, f"inputs[{i}] has the field(s) {', '.join(unknown)}, which this model does not "
                                     f"read; an input is a string or an object with: {', '.join(allowed)}")

