// Every label the UI shows, in English and Chinese. Config keys, file names and metric names stay as they are:
// they are what the YAML and the command line use.
const STRINGS = {
  en: {
    "nav.data": "Data", "nav.train": "Train", "nav.runs": "Runs", "nav.try": "Try", "nav.deploy": "Deploy",
    "data.title": "Data", "data.task": "Task", "data.file": "File", "data.upload": "Upload…",
    "data.intro": "Pick a labelled file or upload one. lmtune finds the text and label columns as the command line does; change them if it guessed wrong.",
    "data.validation": "Validation file", "data.none": "(split off the training file)",
    "data.preview": "Preview", "data.check": "Check the data", "data.text_column": "Text column",
    "data.pair_column": "Second text (pairs)", "data.label_column": "Label column", "data.auto": "(found automatically)",
    "data.rows_of": "first {shown} of {total} rows", "data.checking": "Reading the data and tokenising it…",
    "check.rows": "Rows", "check.split": "split", "check.count": "rows", "check.classes": "Class balance",
    "check.duplicates": "Duplicate rows", "check.leakage": "Texts also in train", "check.conflicts": "Label conflicts",
    "check.conflicts_text": "training texts appear with more than one label",
    "check.lengths": "Length in tokens", "check.truncated": "truncated at max_length",
    "check.unknown": "Unknown-token rate", "check.unknown_text": "of the training tokens are unknown to the model's tokenizer",
    "check.model": "Model", "check.warnings": "Warnings", "check.none": "none", "check.loss_mask": "Loss mask",
    "check.loss_mask_text": "Highlighted tokens are scored (the answers); the rest is context the model reads but is not trained to write.",
    "check.measured": "measured on {n} rows", "check.targets": "Targets",
    "train.title": "Train", "train.task": "Task", "train.model": "Model", "train.method": "Method",
    "train.name": "Run name", "train.start": "Start training", "train.yaml": "Config (YAML)", "train.command": "Command",
    "train.form_hint": "Every setting of the config, with its default. Only what you change is written.",
    "train.queue": "Runs started here", "train.none": "No runs started yet.", "train.stop": "Stop", "train.resume": "Resume",
    "train.eta": "ETA", "train.step": "step", "train.default": "default", "train.started": "Queued as job {id}.",
    "state.queued": "queued", "state.running": "running", "state.stopping": "stopping (saving a checkpoint)",
    "state.stopped": "stopped (checkpoint saved)", "state.finished": "finished", "state.failed": "failed",
    "state.cancelled": "cancelled", "state.incomplete": "incomplete",
    "section.run": "Run", "section.task": "Task settings", "section.data": "Data", "section.model": "Model",
    "section.method": "Method", "section.train": "Training",
    "chart.loss": "training loss", "chart.step": "step",
    "runs.title": "Runs", "runs.name": "run", "runs.task": "task", "runs.model": "model", "runs.method": "method",
    "runs.state": "state", "runs.report": "report", "runs.delete": "Delete", "runs.open": "open",
    "runs.confirm": "Delete the run {name} and everything in its folder?", "runs.none": "No runs yet: train one first.",
    "runs.compare": "Comparison",
    "try.title": "Try a model", "try.run": "Run", "try.predict": "Predict", "try.send": "Send",
    "try.field.text": "Type a text", "try.field.text_pair": "Second text of the pair",
    "try.field.question": "Question", "try.field.context": "Context (the passage that holds the answer)",
    "try.no_runs": "(no finished runs)", "try.why": "Why: green tokens pushed the prediction up, red ones down.",
    "try.prediction": "Prediction", "try.score": "score",
    "deploy.title": "Deploy", "deploy.export": "Export to ONNX", "deploy.int8": "also an int8 copy",
    "deploy.export_button": "Export", "deploy.serve": "Serve over HTTP (this machine only)", "deploy.port": "Port",
    "deploy.variant": "Model", "deploy.start": "Start serving", "deploy.stop": "Stop serving",
    "deploy.exporting": "Exporting (a minute for a small model)…", "deploy.call": "Call it with:",
    "deploy.serving": "{name} on port {port}: {state}",
  },
  zh: {
    "nav.data": "数据", "nav.train": "训练", "nav.runs": "运行记录", "nav.try": "试用", "nav.deploy": "部署",
    "data.title": "数据", "data.task": "任务", "data.file": "文件", "data.upload": "上传…",
    "data.intro": "选择或上传一个带标签的数据文件。lmtune 会像命令行一样自动识别文本列和标签列；识别有误时可以手动修改。",
    "data.validation": "验证集文件", "data.none": "（从训练文件中划分）",
    "data.preview": "预览", "data.check": "检查数据", "data.text_column": "文本列",
    "data.pair_column": "第二段文本（句对）", "data.label_column": "标签列", "data.auto": "（自动识别）",
    "data.rows_of": "前 {shown} 行，共 {total} 行", "data.checking": "正在读取数据并分词…",
    "check.rows": "行数", "check.split": "数据划分", "check.count": "行数", "check.classes": "类别分布",
    "check.duplicates": "重复行", "check.leakage": "与训练集重复的文本", "check.conflicts": "标签冲突",
    "check.conflicts_text": "条训练文本带有不止一个标签",
    "check.lengths": "长度（词元数）", "check.truncated": "超过 max_length 被截断",
    "check.unknown": "未知词元比例", "check.unknown_text": "的训练词元不在模型词表中",
    "check.model": "模型", "check.warnings": "警告", "check.none": "无", "check.loss_mask": "损失掩码",
    "check.loss_mask_text": "高亮的词元参与损失计算（回答部分）；其余是模型读取但不学习生成的上下文。",
    "check.measured": "基于 {n} 行统计", "check.targets": "目标值",
    "train.title": "训练", "train.task": "任务", "train.model": "模型", "train.method": "方法",
    "train.name": "运行名称", "train.start": "开始训练", "train.yaml": "配置（YAML）", "train.command": "命令行",
    "train.form_hint": "配置中的每一项及其默认值。只有修改过的项会写入配置。",
    "train.queue": "在此启动的训练", "train.none": "还没有启动训练。", "train.stop": "停止", "train.resume": "继续",
    "train.eta": "预计剩余", "train.step": "步", "train.default": "默认", "train.started": "已加入队列，任务 {id}。",
    "state.queued": "排队中", "state.running": "训练中", "state.stopping": "正在停止（保存检查点）",
    "state.stopped": "已停止（检查点已保存）", "state.finished": "已完成", "state.failed": "失败",
    "state.cancelled": "已取消", "state.incomplete": "未完成",
    "section.run": "运行", "section.task": "任务设置", "section.data": "数据", "section.model": "模型",
    "section.method": "方法", "section.train": "训练",
    "chart.loss": "训练损失", "chart.step": "步数",
    "runs.title": "运行记录", "runs.name": "运行", "runs.task": "任务", "runs.model": "模型", "runs.method": "方法",
    "runs.state": "状态", "runs.report": "报告", "runs.delete": "删除", "runs.open": "打开",
    "runs.confirm": "删除运行 {name} 及其文件夹中的全部内容？", "runs.none": "还没有运行记录：请先训练一个模型。",
    "runs.compare": "对比",
    "try.title": "试用模型", "try.run": "运行", "try.predict": "预测", "try.send": "发送",
    "try.field.text": "输入文本", "try.field.text_pair": "句对中的第二段文本",
    "try.field.question": "问题", "try.field.context": "上下文（包含答案的段落）",
    "try.no_runs": "（没有已完成的运行）", "try.why": "依据：绿色词元推高了预测，红色词元拉低了预测。",
    "try.prediction": "预测结果", "try.score": "分数",
    "deploy.title": "部署", "deploy.export": "导出为 ONNX", "deploy.int8": "同时导出 int8 版本",
    "deploy.export_button": "导出", "deploy.serve": "HTTP 服务（仅本机）", "deploy.port": "端口",
    "deploy.variant": "模型", "deploy.start": "启动服务", "deploy.stop": "停止服务",
    "deploy.exporting": "正在导出（小模型约需一分钟）…", "deploy.call": "调用方式：",
    "deploy.serving": "{name} 端口 {port}：{state}",
  },
};

let language = localStorage.getItem("lmtune.language") ||
  ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");

function t(key, values = {}) {
  const text = STRINGS[language][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => values[name] ?? "");
}

function translatePage() {
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.getElementById("lang").textContent = language === "zh" ? "English" : "中文";
}
