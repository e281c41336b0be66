// The lmtune UI: one page per step, all state in `state.values` (the config keys the user set, in the config's
// nested shape). The server turns that dict into YAML, a command and a run; the page never builds either itself.
const state = {values: {task: {name: "classification"}}, meta: null, form: null, files: [], runs: [], jobs: [],
               selectedJob: null, columns: [], page: "data", preview: null, check: null, tryRun: null};
const $ = id => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}

function showError(message) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function api(method, path, body, raw = false) {
  const options = {method, headers: {}};
  if (body instanceof Blob) options.body = body;
  else if (body !== undefined) { options.body = JSON.stringify(body); options.headers["content-type"] = "application/json"; }
  const response = await fetch(path, options);
  if (raw) {
    if (!response.ok) throw new Error(await errorText(response));
    return response;
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(detail(data) || response.statusText);
  return data;
}

async function errorText(response) {
  return detail(await response.json().catch(() => ({}))) || response.statusText;
}

function detail(data) {
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) return data.detail.map(d => `${(d.loc || []).join(".")}: ${d.msg}`).join("\n");
  return "";
}

// Runs `work`, showing its error instead of throwing; returns its result or undefined.
async function attempt(work) {
  try {
    showError("");
    return await work();
  } catch (err) {
    showError(err.message);
  }
}

// ---- config values -------------------------------------------------------------------------------------------
function getValue(key) {
  return key.split(".").reduce((node, part) => (node && part in node ? node[part] : undefined), state.values);
}

function setValue(key, value) {
  const parts = key.split(".");
  let node = state.values;
  for (const part of parts.slice(0, -1)) node = node[part] ??= {};
  if (value === undefined) delete node[parts.at(-1)];
  else node[parts.at(-1)] = value;
  for (const section of Object.keys(state.values)) {
    if (typeof state.values[section] === "object" && state.values[section] !== null &&
        !Array.isArray(state.values[section]) && !Object.keys(state.values[section]).length) delete state.values[section];
  }
  scheduleConfig();
}

function parseField(kind, text) {
  if (text === "") return undefined;
  if (text === "null") return null;
  if (kind === "integer") return Number.parseInt(text, 10);
  if (kind === "number") return Number(text);
  if (kind === "boolean") return text === "true";
  if (kind === "array") return text.split(",").map(s => s.trim()).filter(Boolean);
  if (kind === "text" && /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(text)) return Number(text);
  return text;
}

let configTimer = null;
function scheduleConfig() {
  clearTimeout(configTimer);
  configTimer = setTimeout(refreshConfig, 250);
}

async function refreshConfig() {
  try {
    const found = await api("POST", "/api/config", state.values);
    $("yaml").textContent = found.yaml;
    $("command").textContent = found.command;
    $("config-error").hidden = true;
  } catch (err) {
    $("config-error").hidden = false;
    $("config-error").textContent = err.message;
  }
  for (const el of document.querySelectorAll(".field")) el.classList.toggle("changed", getValue(el.dataset.key) !== undefined);
}

// ---- pages ---------------------------------------------------------------------------------------------------
function showPage(page) {
  state.page = page;
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.page === page);
  if (page === "runs" || page === "try" || page === "deploy") refreshRuns();
  if (page === "deploy") refreshServing();
}

// ---- data ----------------------------------------------------------------------------------------------------
async function loadFiles(select) {
  state.files = (await api("GET", "/api/files")).files;
  const current = getValue("data.train");
  $("file-select").replaceChildren(...state.files.map(f => h("option", {value: f.path, selected: f.path === current}, f.label)));
  $("validation-select").replaceChildren(h("option", {value: ""}, t("data.none")),
    ...state.files.map(f => h("option", {value: f.path, selected: f.path === getValue("data.validation")}, f.label)));
  if (select) $("file-select").value = select;
  if (!current || select) chooseFile($("file-select").value);
}

function chooseFile(path) {
  setValue("data.train", path);
  for (const key of ["text_column", "label_column", "text_pair_column"]) setValue(`data.${key}`, undefined);
  $("checks").replaceChildren();
  state.check = null;
  preview();
}

async function upload(file) {
  await attempt(async () => {
    const saved = await api("POST", `/api/upload?filename=${encodeURIComponent(file.name)}`, file);
    await loadFiles(saved.path);
  });
}

async function preview() {
  await attempt(async () => {
    state.preview = await api("POST", "/api/preview", state.values);
    showPreview();
  });
}

function showPreview() {
  const found = state.preview;
  if (!found) return;
  $("preview-table").replaceChildren(table(found.columns, found.rows),
    h("div", {class: "hint"}, t("data.rows_of", {shown: found.rows.length, total: found.total_rows})));
  state.columns = found.columns;
  const detected = found.detected || {};
  for (const [id, key] of [["col-text", "text_column"], ["col-label", "label_column"], ["col-pair", "text_pair_column"]]) {
    const chosen = getValue(`data.${key}`), auto = detected[key];
    $(id).replaceChildren(h("option", {value: ""}, t("data.auto") + (auto !== undefined && auto !== null ? `: ${auto}` : "")),
      ...found.columns.map(c => h("option", {value: c, selected: String(chosen) === c}, c)));
  }
  $("columns").hidden = !found.columns.length;
  $("detected").textContent = found.error || found.how || "";
}

function chooseColumn(key, value) {
  const column = value === "" ? undefined : /^\d+$/.test(value) && !state.columns.includes(value) ? Number(value) : value;
  setValue(`data.${key}`, column);
}

function table(columns, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, columns.map(c => h("th", {}, c)))),
    h("tbody", {}, rows.map(r => h("tr", {}, r.map(c => h("td", {title: String(c ?? "")}, c ?? ""))))));
}

async function checkData() {
  $("checks").replaceChildren(h("div", {class: "card wide"}, t("data.checking")));
  state.check = await attempt(() => api("POST", "/api/check", state.values));
  $("checks").replaceChildren(...(state.check ? checkCards(state.check) : []));
}

function bars(counts) {
  const top = Math.max(...Object.values(counts), 1);
  return Object.entries(counts).map(([name, n]) => h("div", {class: "bar-row"}, h("span", {class: "name", title: name}, name),
    h("div", {class: "fill", style: `width:${Math.round(n / top * 160)}px`}), String(n)));
}

function checkCards(c) {
  const cards = [];
  const card = (key, body, warn = false, wide = false) =>
    cards.push(h("div", {class: `card check-card${warn ? " warn" : ""}${wide ? " wide" : ""}`, "data-check": key}, h("h3", {}, t(key)), ...body));
  if (c.warnings && c.warnings.length) card("check.warnings", c.warnings.map(w => h("p", {}, w)), true, true);
  card("check.model", [h("div", {class: "big"}, c.model.name), h("div", {class: "hint"}, c.model.why || "")]);
  if (c.rows) card("check.rows", [table([t("check.split"), t("check.count")], Object.entries(c.rows))]);
  if (c.class_balance) for (const [split, counts] of Object.entries(c.class_balance)) cards.push(
    h("div", {class: "card check-card", "data-check": "check.classes"}, h("h3", {}, `${t("check.classes")} · ${split}`), ...bars(counts)));
  if (c.targets) card("check.targets", [h("pre", {}, JSON.stringify(c.targets, null, 1))]);
  const perSplit = v => (v && typeof v === "object") ? Object.entries(v).map(([s, n]) => `${s}: ${n}`).join(" · ") || "0" : String(v ?? 0);
  const anyOf = v => (v && typeof v === "object") ? Object.values(v).some(n => n > 0) : v > 0;
  // A task that does not count these (sft) leaves them out: no card, rather than a zero it never measured.
  if ("duplicates" in c) card("check.duplicates", [h("div", {class: "big"}, perSplit(c.duplicates))], anyOf(c.duplicates));
  if ("leakage" in c) card("check.leakage", [h("div", {class: "big"}, perSplit(c.leakage))], anyOf(c.leakage));
  if ("label_conflicts" in c) card("check.conflicts", [h("div", {class: "big"}, String(c.label_conflicts)),
    h("div", {class: "hint"}, t("check.conflicts_text"))], c.label_conflicts > 0);
  if (typeof c.unknown_token_rate === "number") card("check.unknown", [h("div", {class: "big"}, `${(c.unknown_token_rate * 100).toFixed(2)}%`),
    h("div", {class: "hint"}, t("check.unknown_text"))], c.unknown_token_rate > 0.05);
  if (c.lengths) {
    const L = c.lengths, svg = svgEl("svg", {id: "length-chart", class: "chart", viewBox: "0 0 420 160"});
    if (L.histogram) histogram(svg, L.histogram.edges, L.histogram.counts, L.max_length);
    const p = L.percentiles || {};
    card("check.lengths", [svg, h("div", {}, Object.entries(p).map(([k, v]) => `${k}: ${v}`).join(" · ")),
      h("div", {class: "big"}, `${((L.truncated_share ?? 0) * 100).toFixed(1)}% ${t("check.truncated")} (${L.truncated_rows ?? 0})`),
      h("div", {class: "hint"}, t("check.measured", {n: L.measured_rows}))], L.truncated_share > 0.05, true);
  }
  if (c.loss_mask && c.loss_mask.length) card("check.loss_mask", [h("p", {class: "hint"}, t("check.loss_mask_text")),
    ...c.loss_mask.map(chat => h("div", {class: "tokens loss-mask"},
      chat.map(tok => h("span", {class: tok.scored ? "scored" : ""}, tok.token))))], false, true);
  return cards;
}

// ---- train ---------------------------------------------------------------------------------------------------
async function loadForm() {
  state.form = await api("GET", `/api/form?task=${encodeURIComponent(getValue("task.name"))}`);
  const shown = new Set(["task.name", "model.name", "method.name", "name"]);
  $("config-form").replaceChildren(...state.form.sections.map(section =>
    h("details", {"data-section": section.name, open: section.name === "train" || section.name === "task"},
      h("summary", {}, t(`section.${section.name}`)),
      ...section.fields.filter(f => !shown.has(f.key)).map(fieldRow))));
  scheduleConfig();
}

function fieldRow(f) {
  const value = getValue(f.key);
  const shownDefault = f.default === null ? "null" : Array.isArray(f.default) ? f.default.join(", ") : String(f.default);
  let input;
  if (f.kind === "boolean" || f.kind === "choice") {
    const options = f.kind === "boolean" ? ["true", "false"] : f.choices;
    input = h("select", {}, h("option", {value: ""}, `${t("train.default")}: ${shownDefault}`),
      ...options.map(o => h("option", {value: String(o), selected: value !== undefined && String(value) === String(o)}, String(o))),
      f.nullable ? h("option", {value: "null", selected: value === null}, "null") : null);
  } else {
    const listId = f.choices.length ? `choices-${f.key}` : undefined;
    input = h("input", {placeholder: shownDefault, list: listId,
                        value: value === undefined ? undefined : value === null ? "null" : Array.isArray(value) ? value.join(", ") : String(value)});
    if (listId) input = h("span", {}, input, h("datalist", {id: listId}, f.choices.map(c => h("option", {value: c}))));
  }
  const control = input.tagName === "SPAN" ? input.firstChild : input;
  control.dataset.key = f.key;
  control.addEventListener("change", () => setValue(f.key, parseField(f.kind, control.value.trim())));
  return h("div", {class: "field", "data-key": f.key}, h("code", {title: f.key}, f.key), input, f.help ? h("div", {class: "help"}, f.help) : null);
}

function syncPickers() {
  $("task-select").value = $("train-task").value = getValue("task.name");
  $("model-input").value = getValue("model.name") ?? "";
  $("method-select").value = getValue("method.name") ?? "";
  $("name-input").value = getValue("name") ?? "";
}

async function chooseTask(task) {
  state.values.task = {name: task};
  syncPickers();
  await loadForm();
  if (getValue("data.train")) preview();
}

async function startTraining() {
  const started = await attempt(() => api("POST", "/api/jobs", state.values));
  if (started) {
    state.selectedJob = started.id;
    await refreshJobs();
  }
}

async function refreshJobs() {
  const found = await api("GET", "/api/jobs").catch(() => null);
  if (!found) return;
  state.jobs = found.jobs;
  if (state.selectedJob === null && state.jobs.length) state.selectedJob = state.jobs[0].id;
  $("jobs").replaceChildren(...(state.jobs.length ? state.jobs.map(jobCard) : [h("p", {class: "hint"}, t("train.none"))]));
  const job = state.jobs.find(j => j.id === state.selectedJob);
  if (job) {
    lineChart($("curve"), [{name: t("chart.loss"), points: job.loss, cls: "loss"},
                           {name: job.metric || "", points: job.evals, cls: "metric", axis: "right"}], t("chart.step"));
    $("job-output").textContent = job.output;
  }
}

function jobCard(job) {
  const share = job.total_steps ? job.step / job.total_steps : 0;
  const eta = job.eta_seconds !== null && job.state === "running" ? ` · ${t("train.eta")} ${Math.round(job.eta_seconds)} s` : "";
  const canResume = (job.state === "stopped" || job.state === "failed") &&
    !state.jobs.some(j => j.name === job.name && j.id > job.id);
  return h("div", {class: `job${job.id === state.selectedJob ? " selected" : ""}`, "data-id": job.id, "data-state": job.state,
                   onclick: () => { state.selectedJob = job.id; refreshJobs(); }},
    h("div", {class: "head"}, h("span", {class: "name"}, `#${job.id} ${job.name}`),
      h("span", {class: `job-state state-${job.state}`}, t(`state.${job.state}`)),
      ["queued", "running"].includes(job.state) ? h("button", {class: "stop", onclick: e => { e.stopPropagation(); stopJob(job.id); }}, t("train.stop")) : null,
      canResume ? h("button", {class: "resume", onclick: e => { e.stopPropagation(); resumeRun(job.name); }}, t("train.resume")) : null),
    h("div", {class: "progress"}, h("div", {style: `width:${Math.round(share * 100)}%`})),
    h("div", {class: "hint"}, job.step ? `${t("train.step")} ${job.step} / ${job.total_steps}${eta}` : ""));
}

async function stopJob(id) {
  await attempt(() => api("POST", `/api/jobs/${id}/stop`));
  await refreshJobs();
}

async function resumeRun(name) {
  const started = await attempt(() => api("POST", `/api/runs/${encodeURIComponent(name)}/resume`));
  if (started) { state.selectedJob = started.id; showPage("train"); await refreshJobs(); }
}

// ---- runs ----------------------------------------------------------------------------------------------------
async function refreshRuns() {
  const found = await attempt(() => api("GET", "/api/runs"));
  if (!found) return;
  state.runs = found.runs;
  const columns = ["runs.name", "runs.task", "runs.model", "runs.method", "runs.state", "runs.report", ""].map(k => k && t(k));
  $("runs-table").replaceChildren(state.runs.length ? h("table", {}, h("thead", {}, h("tr", {}, columns.map(c => h("th", {}, c)))),
    h("tbody", {}, state.runs.map(r => h("tr", {class: "run-row", "data-name": r.name},
      h("td", {}, r.name), h("td", {}, r.task), h("td", {}, r.model), h("td", {}, r.method),
      h("td", {class: `state-${r.state}`}, t(`state.${r.state}`)),
      h("td", {}, r.state === "finished" ? h("a", {class: "report-link", href: `/runs/${encodeURIComponent(r.name)}/report`, target: "_blank"}, t("runs.open")) : ""),
      h("td", {}, r.state === "stopped" ? h("button", {class: "resume", onclick: () => resumeRun(r.name)}, t("train.resume")) : null,
        h("button", {class: "delete danger", onclick: () => deleteRun(r.name)}, t("runs.delete"))))))) :
    h("p", {class: "hint"}, t("runs.none")));
  $("compare-tables").replaceChildren(...found.tables.map(tb => h("div", {class: "compare"},
    h("h3", {}, `${t("runs.compare")}: ${tb.title}`), tb.columns.length ? table(tb.columns, tb.rows) : null,
    ...(tb.warnings || []).map(w => h("p", {class: "hint"}, w)))));
  const finished = state.runs.filter(r => r.state === "finished");
  for (const id of ["try-run", "deploy-run"]) {
    const before = $(id).value;
    $(id).replaceChildren(...(finished.length ? finished.map(r => h("option", {value: r.name, selected: r.name === before}, `${r.name} (${r.task})`))
                                              : [h("option", {value: ""}, t("try.no_runs"))]));
  }
  chooseTryRun();
}

async function deleteRun(name) {
  if (!confirm(t("runs.confirm", {name}))) return;
  await attempt(() => api("DELETE", `/api/runs/${encodeURIComponent(name)}?confirm=${encodeURIComponent(name)}`));
  await refreshRuns();
}

// ---- try -----------------------------------------------------------------------------------------------------
// One text box per input the run's task reads (text; a second text for pairs; question and context for QA).
function chooseTryRun() {
  const run = state.runs.find(r => r.name === $("try-run").value);
  // The run list refreshes whenever the page opens: only a different run resets the boxes and the answer
  // (a refresh landing after a prediction wiped it).
  if ((run && run.name) === state.tryRun) return;
  state.tryRun = run && run.name;
  const decoder = run && run.kind === "decoder";
  $("chat-box").hidden = !decoder;
  $("try-classify").hidden = decoder;
  const kept = Object.fromEntries([...document.querySelectorAll("#try-inputs textarea")].map(el => [el.dataset.field, el.value]));
  $("try-inputs").replaceChildren(...(run && !decoder ? run.inputs : []).map(field =>
    h("textarea", {id: `try-${field}`, "data-field": field, rows: field === "context" ? 6 : 3,
                   placeholder: t(`try.field.${field}`)}, kept[field] ?? "")));
  $("prediction").replaceChildren();
  $("attribution").replaceChildren();
}

async function predict() {
  const name = $("try-run").value;
  const body = Object.fromEntries([...document.querySelectorAll("#try-inputs textarea")].map(el => [el.dataset.field, el.value]));
  const found = await attempt(() => api("POST", `/api/runs/${encodeURIComponent(name)}/predict`, body));
  if (!found) return;
  const p = found.prediction;
  const probabilities = p.probabilities || {};
  const main = p.label ?? p.answer ?? p.prediction ?? p.value;
  const rest = Object.fromEntries(Object.entries(p).filter(([k]) => !["row", "text", "text_pair", "question", "context",
                                                                         "label", "probabilities", "score"].includes(k)));
  $("prediction").replaceChildren(h("div", {class: "hint"}, t("try.prediction")),
    h("div", {class: "predicted-label"}, String(main ?? "")),
    ...bars(Object.fromEntries(Object.entries(probabilities).map(([k, v]) => [k, Math.round(v * 1000) / 1000]))),
    Object.keys(rest).length ? h("pre", {class: "details"}, JSON.stringify(rest, null, 1)) : null);
  $("attribution").replaceChildren();
  if (found.explanation) {
    $("attribution").append(h("div", {class: "hint"}, t("try.why")));
    for (const field of found.explanation.fields) $("attribution").append(h("div", {}, attributed(field)));
  }
}

// A field's text with each attributed span shaded by its weight (scaled to the largest in the field).
function attributed(field) {
  const spans = field.spans || [];
  const top = Math.max(...spans.map(s => Math.abs(s[2])), 1e-9);
  const out = [];
  let at = 0;
  for (const [start, end, weight] of spans) {
    if (start > at) out.push(field.text.slice(at, start));
    const w = weight / top, color = w > 0 ? `rgba(26,127,55,${Math.abs(w) * 0.6})` : `rgba(198,40,40,${Math.abs(w) * 0.6})`;
    out.push(h("span", {class: "token", style: `background:${color}`, title: weight.toFixed(4)}, field.text.slice(start, end)));
    at = end;
  }
  out.push(field.text.slice(at));
  return out;
}

const chat = [];
async function sendChat() {
  const text = $("chat-input").value.trim();
  if (!text) return;
  $("chat-input").value = "";
  chat.push({role: "user", content: text});
  $("chat-log").append(h("div", {class: "msg user"}, text));
  const answer = h("div", {class: "msg assistant"});
  $("chat-log").append(answer);
  await attempt(async () => {
    const response = await api("POST", `/api/runs/${encodeURIComponent($("try-run").value)}/chat`, {messages: chat}, true);
    const reader = response.body.getReader(), decoder = new TextDecoder();
    for (let part = await reader.read(); !part.done; part = await reader.read()) answer.textContent += decoder.decode(part.value, {stream: true});
    chat.push({role: "assistant", content: answer.textContent});
  });
}

// ---- deploy --------------------------------------------------------------------------------------------------
async function exportOnnx() {
  $("export-result").textContent = t("deploy.exporting");
  const found = await attempt(() => api("POST", `/api/runs/${encodeURIComponent($("deploy-run").value)}/export`, {int8: $("export-int8").checked}));
  $("export-result").textContent = found ? JSON.stringify(found, null, 1) : "";
}

async function serve() {
  await attempt(() => api("POST", `/api/runs/${encodeURIComponent($("deploy-run").value)}/serve`,
                          {port: Number($("serve-port").value), variant: $("serve-variant").value}));
  await refreshServing();
}

async function unserve() {
  await attempt(() => api("DELETE", `/api/runs/${encodeURIComponent($("deploy-run").value)}/serve`));
  await refreshServing();
}

async function refreshServing() {
  const found = await api("GET", "/api/serving").catch(() => null);
  if (!found) return;
  $("serve-status").replaceChildren(...found.servers.map(s => h("div", {class: "card server", "data-state": s.state},
    h("div", {}, t("deploy.serving", {name: s.name, port: s.port, state: s.state})),
    h("div", {class: "hint"}, t("deploy.call")), h("pre", {class: "curl"}, s.curl))));
}

// ---- start ---------------------------------------------------------------------------------------------------
async function start() {
  translatePage();
  for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => showPage(button.dataset.page));
  $("lang").addEventListener("click", () => {
    language = language === "zh" ? "en" : "zh";
    localStorage.setItem("lmtune.language", language);
    translatePage();
    showPreview();
    if (state.check) $("checks").replaceChildren(...checkCards(state.check));
    $("validation-select").options[0].textContent = t("data.none");
    for (const box of document.querySelectorAll("#try-inputs textarea")) box.placeholder = t(`try.field.${box.dataset.field}`);
    loadForm();
    refreshJobs();
    if (state.page !== "data" && state.page !== "train") refreshRuns();
  });
  state.meta = await api("GET", "/api/meta");
  state.form = await api("GET", "/api/form?task=classification");
  for (const id of ["task-select", "train-task"]) {
    $(id).replaceChildren(...state.form.tasks.map(task => h("option", {value: task}, task)));
    $(id).addEventListener("change", e => chooseTask(e.target.value));
  }
  $("model-list").replaceChildren(...state.meta.models.map(m => h("option", {value: m})));
  $("method-select").replaceChildren(...state.meta.methods.map(m => h("option", {value: m === "auto" ? "" : m}, m)));
  $("model-input").addEventListener("change", e => setValue("model.name", e.target.value.trim() || undefined));
  $("method-select").addEventListener("change", e => setValue("method.name", e.target.value || undefined));
  $("name-input").addEventListener("change", e => setValue("name", e.target.value.trim() || undefined));
  $("file-select").addEventListener("change", e => chooseFile(e.target.value));
  $("validation-select").addEventListener("change", e => setValue("data.validation", e.target.value || undefined));
  $("upload").addEventListener("change", e => e.target.files[0] && upload(e.target.files[0]));
  $("preview-button").addEventListener("click", preview);
  $("check-button").addEventListener("click", checkData);
  $("col-text").addEventListener("change", e => chooseColumn("text_column", e.target.value));
  $("col-label").addEventListener("change", e => chooseColumn("label_column", e.target.value));
  $("col-pair").addEventListener("change", e => chooseColumn("text_pair_column", e.target.value));
  $("start-button").addEventListener("click", startTraining);
  $("try-run").addEventListener("change", chooseTryRun);
  $("predict-button").addEventListener("click", predict);
  $("chat-send").addEventListener("click", sendChat);
  $("chat-input").addEventListener("keydown", e => e.key === "Enter" && sendChat());
  $("export-button").addEventListener("click", exportOnnx);
  $("serve-button").addEventListener("click", serve);
  $("unserve-button").addEventListener("click", unserve);
  syncPickers();
  await loadForm();
  await attempt(() => loadFiles());
  showPage("data");
  setInterval(() => { if (state.page === "train") refreshJobs(); }, 1000);
  setInterval(() => { if (state.page === "deploy") refreshServing(); }, 2000);
}

start();
