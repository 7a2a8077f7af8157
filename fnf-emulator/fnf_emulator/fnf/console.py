"""A small console, like the Serverless Workflow console: plain server-rendered HTML and SVG.

- ``/console/``: flows and recent executions
- ``/console/flows/{flow}``: a flow's definition and executions
- ``/console/flows/{flow}/executions/{execution}``: status and times, input and output, the flow
  definition, the path the execution took drawn as SVG (Start, each step, End, coloured by
  outcome) and each step's input and output.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fnf_emulator.core import Request, Response, ServiceError
from fnf_emulator.fnf.engine import RUNNING, Execution, format_time

if TYPE_CHECKING:
    from fnf_emulator.fnf.service import FnFService

COLOURS = {
    # outcome -> (fill, stroke)
    "Succeeded": ("#e6f4ea", "#1e8e3e"),
    "Failed": ("#fce8e6", "#d93025"),
    "TimedOut": ("#fce8e6", "#d93025"),
    "Stopped": ("#eceff1", "#607d8b"),
    "Running": ("#fef7e0", "#f29900"),
    "Start": ("#e8f0fe", "#1a73e8"),
}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#202124;background:#f8f9fa}
header{background:#1a73e8;color:#fff;padding:12px 24px;font-size:18px}
header a{color:#fff;text-decoration:none}
main{padding:16px 24px}
table{border-collapse:collapse;background:#fff;margin:8px 0 24px;min-width:50%}
th,td{border:1px solid #dadce0;padding:6px 10px;text-align:left;vertical-align:top;font-size:14px}
th{background:#f1f3f4}
pre{background:#fff;border:1px solid #dadce0;padding:8px;margin:0;max-width:60em;overflow:auto;font-size:12px;
white-space:pre-wrap;overflow-wrap:anywhere}
.status{font-weight:600}
.Succeeded{color:#1e8e3e}.Failed,.TimedOut{color:#d93025}.Running{color:#f29900}.Stopped{color:#607d8b}
.panels{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.panel{background:#fff;border:1px solid #dadce0;padding:12px}
h2{font-size:16px;margin:16px 0 8px}
"""


def _page(title: str, body: str, refresh: bool = False) -> Response:
    meta = '<meta http-equiv="refresh" content="2">' if refresh else ""
    html = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{meta}<title>{escape(title)}</title>'
        f'<style>{_CSS}</style></head><body><header><a href="/console/">Serverless Workflow / CloudFlow emulator</a>'
        f" &rsaquo; {escape(title)}</header><main>{body}</main></body></html>"
    )
    return Response(200, {"Content-Type": "text/html; charset=utf-8"}, html.encode())


def _not_found(message: str) -> Response:
    html = f"<!DOCTYPE html><html><head><title>Not found</title></head><body><p>{escape(message)}</p></body></html>"
    return Response(404, {"Content-Type": "text/html; charset=utf-8"}, html.encode())


def execution_path(flow: str, execution: str) -> str:
    """The console URL path of an execution (other components link to it)."""
    return f"/console/flows/{quote(flow, safe='')}/executions/{quote(execution, safe='')}"


def render(service: FnFService, request: Request) -> Response:
    if request.method not in ("GET", "HEAD"):
        return Response(405, {"Content-Type": "text/plain", "Allow": "GET"}, b"GET only\n")
    parts = [p for p in request.path.split("/") if p][1:]
    try:
        if not parts:
            return _index(service)
        if parts[0] == "flows" and len(parts) == 2:
            return _flow_page(service, parts[1])
        if parts[0] == "flows" and len(parts) == 4 and parts[2] == "executions":
            with service.engine.lock:
                ex = service.execution(parts[1], parts[3])
                return _execution_page(ex)
    except ServiceError as err:
        return _not_found(err.message)
    return _not_found(f"No console page at {request.path}")


def _status(status: str) -> str:
    return f'<span class="status {escape(status)}">{escape(status)}</span>'


def _executions_table(executions: list[Execution]) -> str:
    if not executions:
        return "<p>No executions.</p>"
    rows = "".join(
        f'<tr><td><a href="{execution_path(e.flow, e.name)}">{escape(e.name)}</a></td><td>{escape(e.flow)}</td>'
        f"<td>{_status(e.status)}</td><td>{format_time(e.started)}</td><td>{format_time(e.stopped) or ''}</td></tr>"
        for e in executions
    )
    return (
        "<table><tr><th>Execution</th><th>Flow</th><th>Status</th><th>Started</th><th>Stopped</th></tr>"
        f"{rows}</table>"
    )


def _index(service: FnFService) -> Response:
    flows = service.flows()
    with service.engine.lock:
        recent = sorted(service.engine.executions.values(), key=lambda e: e.started, reverse=True)[:50]
    rows = "".join(
        f'<tr><td><a href="/console/flows/{quote(f["Name"], safe="")}">{escape(f["Name"])}</a></td>'
        f"<td>{escape(f.get('Description', ''))}</td><td>{escape(f['ExecutionMode'])}</td>"
        f"<td>{escape(f['CreatedTime'])}</td><td>{len(service.executions(f['Name']))}</td></tr>"
        for f in flows
    )
    flows_html = (
        "<table><tr><th>Flow</th><th>Description</th><th>Mode</th><th>Created</th><th>Executions</th></tr>"
        f"{rows}</table>"
        if flows
        else "<p>No flows yet.</p>"
    )
    body = f"<h2>Flows</h2>{flows_html}<h2>Recent executions</h2>{_executions_table(recent)}"
    return _page("Flows", body)


def _flow_page(service: FnFService, name: str) -> Response:
    with service.engine.lock:
        flow = dict(service.flow(name))
    executions = list(reversed(service.executions(name)))
    body = (
        f"<h2>Flow {escape(name)}</h2><table>"
        f"<tr><th>Description</th><td>{escape(flow.get('Description', ''))}</td></tr>"
        f"<tr><th>Created</th><td>{escape(flow['CreatedTime'])}</td></tr>"
        f"<tr><th>Last modified</th><td>{escape(flow['LastModifiedTime'])}</td></tr></table>"
        f'<h2>Definition</h2><pre id="definition">{escape(flow["Definition"])}</pre>'
        f"<h2>Executions</h2>{_executions_table(executions)}"
    )
    return _page(f"Flow {name}", body)


def _steps(ex: Execution) -> list[dict[str, Any]]:
    """Steps in the order they were entered, with outcome, input and output, from the history."""
    steps: dict[int, dict[str, Any]] = {}
    types: dict[str, str] = {}
    depths: dict[str, int] = {}
    for s in ex.parsed.steps.values():
        types.setdefault(s.name, s.type)
        # "root/0" is depth 0, "root/0/b1/2" depth 1, ... (names are unique per level only)
        depths.setdefault(s.name, (s.id.count("/") - 1) // 2)
    for ev in ex.events:
        detail = json.loads(ev.get("EventDetail") or "{}")
        if ev["Type"] == "StepEntered":
            where = detail.get("in") or {}
            scope = ""
            if "branch" in where:
                scope = f"{where['step']} branch {where['branch']}"
            elif "iteration" in where:
                scope = f"{where['step']} #{where['iteration']}"
            steps[ev["EventId"]] = {
                "name": ev["StepName"],
                "type": types.get(ev["StepName"], ""),
                "depth": depths.get(ev["StepName"], 0),
                "scope": scope,
                "status": "Running" if ex.status == RUNNING else "Stopped",
                "input": detail.get("input"),
                "entered": ev["Time"],
            }
        elif ev["Type"] in ("StepSucceeded", "StepFailed") and ev["ScheduleEventId"] in steps:
            step = steps[ev["ScheduleEventId"]]
            step["status"] = "Succeeded" if ev["Type"] == "StepSucceeded" else "Failed"
            step["exited"] = ev["Time"]
            if ev["Type"] == "StepSucceeded":
                step["output"] = detail.get("output")
                step["local"] = detail.get("local")
            else:
                step["error"] = detail.get("error")
                step["cause"] = detail.get("cause")
    return list(steps.values())


def _svg(ex: Execution, steps: list[dict[str, Any]]) -> str:
    indent, box_w, box_h, gap = 28, 220, 40, 28
    deepest = max((s["depth"] for s in steps), default=0)
    width = box_w + 40 + deepest * indent
    nodes: list[tuple[str, str, str, int, str]] = [("Start", "", "Start", 0, "")]
    nodes += [(s["name"], s["type"], s["status"], s["depth"], s["scope"]) for s in steps]
    nodes.append(("End", "", ex.status, 0, ""))
    height = len(nodes) * (box_h + gap) + 10
    out = [
        f'<svg id="execution-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Execution path">',
        '<defs><marker id="arrow" markerWidth="10" markerHeight="10" refX="9" refY="5" orient="auto">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#5f6368"/></marker></defs>',
    ]
    for i, (label, stype, status, depth, scope) in enumerate(nodes):
        y = 10 + i * (box_h + gap)
        x = 20 + depth * indent
        centre = x + box_w // 2
        next_centre = 20 + nodes[i + 1][3] * indent + box_w // 2 if i < len(nodes) - 1 else centre
        fill, stroke = COLOURS.get(status, COLOURS["Running"])
        if i == 0:
            fill, stroke = COLOURS["Start"]
        rounded = box_h // 2 if label in ("Start", "End") and i in (0, len(nodes) - 1) else 6
        dash = ' stroke-dasharray="5,3"' if status == "Running" else ""
        kind = "terminal" if i in (0, len(nodes) - 1) else "step"
        where = f' data-scope="{escape(scope)}"' if scope else ""
        out.append(
            f'<g class="node {kind}" data-name="{escape(label)}" data-status="{escape(status)}"{where}>'
            f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="{rounded}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text x="{centre}" y="{y + box_h // 2 + (0 if scope else 5)}" text-anchor="middle" font-size="14" '
            f'font-family="sans-serif" fill="#202124">{escape(label)}'
            + (f' <tspan fill="#5f6368" font-size="11">({escape(stype)})</tspan>' if stype else "")
            + "</text>"
            + (
                f'<text x="{centre}" y="{y + box_h // 2 + 15}" text-anchor="middle" font-size="11" '
                f'font-family="sans-serif" fill="#5f6368">{escape(scope)}</text>'
                if scope
                else ""
            )
            + "</g>"
        )
        if i < len(nodes) - 1:
            out.append(
                f'<line x1="{centre}" y1="{y + box_h}" x2="{next_centre}" y2="{y + box_h + gap - 2}" '
                'stroke="#5f6368" stroke-width="2" marker-end="url(#arrow)"/>'
            )
    out.append("</svg>")
    return "".join(out)


def _json(value: Any) -> str:
    if value is None:
        return ""
    return f"<pre>{escape(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"


def _execution_page(ex: Execution) -> Response:
    steps = _steps(ex)
    try:
        input_value: Any = json.loads(ex.input)
    except ValueError:
        input_value = ex.input
    output_value = json.loads(ex.output) if ex.output else None
    info = (
        '<table id="execution-info">'
        f"<tr><th>Execution</th><td>{escape(ex.name)}</td></tr>"
        f'<tr><th>Flow</th><td><a href="/console/flows/{quote(ex.flow, safe="")}">{escape(ex.flow)}</a></td></tr>'
        f'<tr><th>Status</th><td id="status">{_status(ex.status)}</td></tr>'
        f"<tr><th>Started</th><td>{format_time(ex.started)}</td></tr>"
        f"<tr><th>Stopped</th><td>{format_time(ex.stopped) or ''}</td></tr>"
        + (f"<tr><th>Error</th><td>{escape(ex.error or '')}</td></tr>" if ex.error else "")
        + (f"<tr><th>Cause</th><td>{escape(ex.cause or '')}</td></tr>" if ex.cause else "")
        + f"<tr><th>Input</th><td>{_json(input_value)}</td></tr>"
        f"<tr><th>Output</th><td>{_json(output_value)}</td></tr></table>"
    )
    rows = "".join(
        f'<tr class="step" data-name="{escape(s["name"])}"><td>{escape(s["name"])}'
        + (f'<br><small>{escape(s["scope"])}</small>' if s["scope"] else "")
        + f"</td><td>{escape(s['type'])}</td>"
        f"<td>{_status(s['status'])}</td><td>{escape(s['entered'])}</td><td>{_json(s.get('input'))}</td>"
        f"<td>{_json(s.get('output'))}{_json(s.get('local')) if s.get('local') not in (None, {}, s.get('output')) else ''}"
        + (f"{escape(s.get('error') or '')}: {escape(s.get('cause') or '')}" if s.get("error") else "")
        + "</td></tr>"
        for s in steps
    )
    steps_html = (
        '<table id="steps"><tr><th>Step</th><th>Type</th><th>Status</th><th>Entered</th><th>Input</th>'
        f"<th>Output / local / error</th></tr>{rows}</table>"
    )
    body = (
        f"<h2>Execution {escape(ex.name)}</h2>{info}"
        '<div class="panels"><div class="panel"><h2>Visual workflow</h2>'
        f"{_svg(ex, steps)}</div>"
        f'<div class="panel"><h2>Flow definition</h2><pre id="definition">{escape(ex.definition)}</pre></div></div>'
        f"<h2>Step information</h2>{steps_html}"
    )
    return _page(f"Execution {ex.name}", body, refresh=ex.status == RUNNING)
