"""`lmtune ui`: the web app. FastAPI with our own static pages, not Gradio.

FastAPI is what `lmtune serve` already runs on, so the UI reuses its body limit and key check and adds no
dependency; its pages are plain HTML, CSS and JavaScript shipped in the package, with nothing fetched from a CDN,
a font service or analytics, so it works offline and its tests can prove that no request leaves 127.0.0.1.
Gradio would bring some forty packages and a front end that asks for web fonts by default, and its components
would still need wiring to our schema by hand. Every action calls the same functions as the CLI command of the
same name, and training runs the CLI itself (lmtune.ui.jobs).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import Body, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from lmtune.config import MethodConfig, build_config
from lmtune.data_checks import check_data, preview
from lmtune.errors import UserError
from lmtune.generation.generate import Generator, Settings
from lmtune.models.registry import list_models
from lmtune.reporting.compare import compare_runs, comparison_table, title
from lmtune.reporting.report import build_report
from lmtune.serving.app import BodyLimit
from lmtune.serving.onnx_export import export_onnx
from lmtune.tasks import checked_config
from lmtune.trained.explain import explain_rows
from lmtune.trained.generator import load_generator
from lmtune.trained.predictor import Predictor
from lmtune.ui.access import LOOPBACK, KeyCheck
from lmtune.ui.files import data_files, save_upload
from lmtune.ui.jobs import JobQueue
from lmtune.ui.runs import RunServers, list_runs, run_dir
from lmtune.ui.schema import as_command, as_yaml, form
from lmtune.version import __version__

STATIC = Path(__file__).parent / "static"
JsonBody = Annotated[dict, Body()]
OptionalBody = Annotated[dict | None, Body()]
MAX_JSON_BYTES = 1_000_000  # every request but an upload: configs and texts to try
MAX_TEXT_CHARS = 10_000  # per text on the Try page, as `serve` bounds each input
LOADED_MODELS = 2  # trained models the Try page keeps loaded (each holds its weights in memory)


def create_ui(runs: str | Path = "runs", *, data_root: str | Path = ".", api_key: str | None = None,
              host: str = "127.0.0.1") -> FastAPI:
    runs, data_root = Path(runs).resolve(), Path(data_root).resolve()
    jobs, servers, loaded = JobQueue(runs), RunServers(runs), {}
    one_check = threading.Lock()  # the checks collect what lmtune prints by swapping sys.stdout: one at a time
    app = FastAPI(title="lmtune ui", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=MAX_JSON_BYTES, exempt=("/api/upload",))
    if api_key is not None:
        app.add_middleware(KeyCheck, api_key=api_key)
    if host in LOOPBACK:  # a web page elsewhere cannot reach this app through a DNS name that points here
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]"])
    app.add_exception_handler(UserError, _user_error)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.router.on_shutdown += [jobs.close, servers.close]

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "index.html").read_text(encoding="utf-8")

    @app.get("/api/meta")
    def meta() -> dict:
        return {"version": __version__, "runs": str(runs), "data_root": str(data_root),
                "models": [m["name"] for m in list_models()],
                "methods": list(MethodConfig.model_json_schema()["properties"]["name"]["enum"])}

    @app.get("/api/form")
    def config_form(task: str = "classification") -> dict:
        return form(task)

    @app.post("/api/config")
    def config(values: JsonBody) -> dict:
        """The form's values as YAML and as the CLI command, once the schema accepts them."""
        checked_config(build_config(values))
        return {"yaml": as_yaml(values), "command": as_command(values)}

    @app.get("/api/files")
    def files() -> dict:
        return {"files": data_files(data_root, runs)}

    @app.post("/api/upload")
    async def upload(request: Request, filename: str) -> dict:
        return {"path": str(await save_upload(request, runs, filename))}

    @app.post("/api/preview")
    def data_preview(values: JsonBody) -> dict:
        with one_check:
            return preview(values)

    @app.post("/api/check")
    def data_check(values: JsonBody) -> dict:
        with one_check:
            return check_data(values)

    @app.get("/api/jobs")
    def job_list() -> dict:
        return {"jobs": jobs.status()}

    @app.post("/api/jobs")
    def job_start(values: JsonBody) -> dict:
        cfg = checked_config(build_config(values))
        return {"id": jobs.start(cfg, as_yaml(values)).id}

    @app.post("/api/jobs/{job_id}/stop")
    def job_stop(job_id: int) -> dict:
        if job_id not in jobs.jobs:
            raise HTTPException(404, f"no job {job_id}")
        return {"state": jobs.stop(job_id).state}

    @app.get("/api/runs")
    def runs_list() -> dict:
        found = list_runs(runs, jobs)
        return {"runs": found, "tables": _tables(runs, found)}

    @app.post("/api/runs/{name}/resume")
    def run_resume(name: str) -> dict:
        path = run_dir(runs, name)
        if not (path / "checkpoints").is_dir():
            raise HTTPException(409, f"run {name!r} has no checkpoint to resume from")
        return {"id": jobs.resume(name).id}

    @app.delete("/api/runs/{name}")
    def run_delete(name: str, confirm: str = "") -> dict:
        path = run_dir(runs, name)
        if confirm != name:
            raise HTTPException(400, f"deleting a run needs ?confirm={name}")
        if jobs.active_state(name) or servers.serving(name):
            raise HTTPException(409, f"run {name!r} is training or being served; stop it first")
        for key in [k for k in loaded if k[1] == name]:
            loaded.pop(key)
        shutil.rmtree(path)
        return {"deleted": name}

    @app.get("/runs/{name}/report", response_class=HTMLResponse)
    def run_report(name: str) -> FileResponse:
        path = run_dir(runs, name)
        if not (path / "report.html").exists():
            if not (path / "metrics.json").exists():
                raise HTTPException(404, f"run {name!r} has not finished: its report comes at the end of training")
            build_report(path)
        return FileResponse(path / "report.html", media_type="text/html")

    def load(name: str, kind: type):
        """A run's model as a Predictor or a generator, kept loaded for the next request about the same run."""
        key = (kind, name)
        if key not in loaded:
            while len(loaded) >= LOADED_MODELS:
                loaded.pop(next(iter(loaded)))
            loaded[key] = Predictor(run_dir(runs, name)) if kind is Predictor else load_generator(run_dir(runs, name))
        return loaded[key]

    @app.post("/api/runs/{name}/predict")
    def run_predict(name: str, body: JsonBody) -> dict:
        """The prediction for one input, with token attributions where the task has a score to attribute."""
        found = load(name, Predictor)
        row = {k: str(v)[:MAX_TEXT_CHARS] for k, v in body.items() if k in found.task.input_fields and v}
        if not row:
            raise HTTPException(422, f"send {' and '.join(found.task.input_fields)}")
        rows = pd.DataFrame([row])
        record = found.predict(rows)[0]
        explained = None
        if found.task.score_for(record) is not None:
            explained = explain_rows(found.model, found.tokenizer, found.task, rows, [record],
                                     found.task.max_length)[0]
        return {"prediction": record, "explanation": explained}

    @app.post("/api/runs/{name}/chat")
    def run_chat(name: str, body: JsonBody) -> StreamingResponse:
        """The assistant's answer to the conversation so far, streamed as it is generated."""
        messages = [{"role": m["role"], "content": str(m["content"])[:MAX_TEXT_CHARS]}
                    for m in body.get("messages", []) if m.get("role") in ("user", "assistant")]
        if not messages or messages[-1]["role"] != "user":
            raise HTTPException(422, "send messages ending with the user's")
        generator = load(name, Generator)
        pieces = generator.stream(generator.prompt(messages), Settings(max_new_tokens=int(body.get("max_new_tokens",
                                                                                                 128))))
        return StreamingResponse(pieces, media_type="text/plain; charset=utf-8")

    @app.post("/api/runs/{name}/export")
    def run_export(name: str, body: OptionalBody = None) -> dict:
        folder = export_onnx(run_dir(runs, name), quantize=bool((body or {}).get("int8")))
        return {"folder": str(folder), **json.loads((folder / "onnx.json").read_text(encoding="utf-8"))}

    @app.get("/api/serving")
    def serving() -> dict:
        return {"servers": servers.status()}

    @app.post("/api/runs/{name}/serve")
    def run_serve(name: str, body: OptionalBody = None) -> dict:
        body = body or {}
        return servers.start(name, int(body.get("port", 8000)), str(body.get("variant", "pytorch")))

    @app.delete("/api/runs/{name}/serve")
    def run_unserve(name: str) -> dict:
        servers.stop(name)
        return {"stopped": name}

    return app


def _tables(runs: Path, found: list[dict]) -> list[dict]:
    """`lmtune compare`'s table for the finished runs, one per task (runs of different tasks do not rank)."""
    out = []
    for task in dict.fromkeys(r["task"] for r in found if r["state"] == "finished"):
        paths = [runs / r["name"] for r in found if r["state"] == "finished" and r["task"] == task]
        try:
            result = compare_runs(paths)
        except UserError as err:
            out.append({"task": task, "title": str(err), "columns": [], "rows": []})
            continue
        table = comparison_table(result)
        out.append({"task": task, "title": title(result), "columns": table["columns"], "rows": table["rows"],
                    "warnings": result["warnings"]})
    return out


async def _user_error(request: Request, err: UserError) -> JSONResponse:
    """A bad config, file or run is the user's to fix: its message, as the CLI would print it."""
    return JSONResponse({"detail": re.sub(r"\s+", " ", str(err))}, status_code=422)
