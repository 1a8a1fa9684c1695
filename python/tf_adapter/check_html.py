"""The checklist's HTML report: one self-contained file (inline SVG plots made
with matplotlib, inline CSS, no network), readable offline and attachable to a
bug report.

Plots: CPU vs NPU loss curves, latency histograms, device memory over time,
scaling bars, per-output error. A short inline script marks the page once it
has loaded (``data-plots``: how many plots rendered with a non-empty box,
``data-errors``: script errors), which the tests read from a headless browser.
"""

import html
import io
import json
import math

__all__ = ["write_html", "render_html"]

_WORD = {True: "PASS", False: "FAIL", None: "skipped"}
_CLASS = {True: "pass", False: "fail", None: "skip"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display; SVG output only
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "figure.dpi": 100})
    return plt


def _svg(fig):
    buf = io.StringIO()
    # No metadata: it only adds a date and namespace URLs to every plot.
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog: the SVG is inline


def plot_loss(training):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    steps = range(1, len(training["npu_loss"]) + 1)
    ax.plot(steps, training["cpu_loss"], "o-", ms=3, label="TensorFlow CPU")
    ax.plot(steps, training["npu_loss"], "s--", ms=3, label="NPU")
    if training.get("cpu_perturbed_loss"):
        ax.plot(steps, training["cpu_perturbed_loss"], ":", color="gray",
                label=f"CPU, weights x (1 ± {training['perturbation']:g})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss, CPU vs NPU")
    ax.grid(alpha=0.3)
    ax.legend()
    return _svg(fig)


def plot_latency(latency):
    return _svg(latency_figure(latency))


def latency_figure(latency):
    plt = _pyplot()
    runs = [v for k, v in sorted(latency.items()) if k.startswith("batch_") and isinstance(v, dict)]
    # Constrained layout keeps the figure title clear of the subplot titles.
    fig, axes = plt.subplots(1, len(runs), figsize=(2.9 * len(runs) + 0.6, 3.0), squeeze=False, layout="constrained")
    for ax, r in zip(axes[0], runs):
        ax.hist(r["samples_ms"], bins=min(20, max(5, len(r["samples_ms"]) // 2)), color="#4c72b0")
        for q, style in (("p50_ms", "-"), ("p99_ms", "--")):
            ax.axvline(r[q], color="#c44e52", ls=style, label=f"{q[:3]} {r[q]:.2f} ms")
        if latency.get("latency_ms") is not None and r["batch"] == 1:
            ax.axvline(latency["latency_ms"], color="black", ls=":", label=f"limit {latency['latency_ms']:g} ms")
        ax.set_title(f"batch {r['batch']}")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("calls")
        ax.legend(fontsize=7)
    fig.suptitle("NPU inference latency")
    return fig


def plot_memory(memory):
    return _svg(memory_figure(memory))


def memory_figure(memory):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 2.9))
    unit, scale = ("MiB", 2**20) if memory["peak_bytes"] >= 2**20 else ("KiB", 2**10)
    t = [s[0] for s in memory["timeline"]]
    used = [s[1] / scale for s in memory["timeline"]]
    ax.plot(t, used, lw=1, color="#4c72b0", label="in use")
    ax.axhline(memory["peak_bytes"] / scale, color="gray", ls=":", label="peak")
    limit = memory["limit"] * memory["capacity_bytes"] / scale
    top = max(memory["peak_bytes"] / scale * 1.3, 1.0)
    if limit <= top * 1.5:  # else the limit would flatten the curve: it goes in the title
        ax.axhline(limit, color="#c44e52", ls="--", label=f"limit {memory['limit']:.0%} of capacity")
        top = max(top, limit * 1.05)
    ax.set_ylim(0, top)
    # Phases are numbered on the plot (names listed under it, phase_list):
    # phases a fraction of a second apart would overprint their names. A
    # number goes in the highest row where it clears the previous one.
    span = max((t[-1] - t[0]) if t else 0.0, 1e-9)
    rows = []  # x of the last number in each row
    for k, (start, _) in enumerate(memory.get("phases", [])):
        ax.axvline(start, color="black", lw=0.5, alpha=0.4)
        row = next((i for i, last in enumerate(rows) if start - last > 0.04 * span), len(rows))
        rows[row:row + 1] = [start]
        ax.text(start, top * (0.97 - 0.1 * row), f" {k + 1}", va="top", fontsize=7, gid=f"phase-{k + 1}")
    ax.set_xlabel("seconds since the start of the check")
    ax.set_ylabel(f"NPU memory ({unit})")
    ax.set_title(f"NPU:0 memory: peak {memory['peak_share']:.2%} of {_bytes(memory['capacity_bytes'])} "
                 f"(limit {memory['limit']:.0%})")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over the curve
    return fig


def phase_list(memory):
    """The numbered phases of the memory plot, as HTML."""
    items = "".join(f"<li>{html.escape(str(phase))} (from {start:.1f} s)</li>"
                    for start, phase in memory.get("phases", []))
    return f"<ol class='phases'>{items}</ol>" if items else ""


def plot_scaling(scaling):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 2.9))
    counts = sorted(scaling["samples_per_s"], key=int)
    rates = [scaling["samples_per_s"][k] for k in counts]
    ax.bar([f"{k} NPU" for k in counts], rates, color="#55a868", label="measured")
    ideal = [rates[0] * int(k) for k in counts]
    ax.plot([f"{k} NPU" for k in counts], ideal, "k:", marker="_", ms=20, label="linear")
    ax.plot([f"{k} NPU" for k in counts], [rates[0] * (scaling["threshold"] if int(k) > 1 else 1) for k in counts],
            "r--", marker="_", ms=20, label=f"threshold {scaling['threshold']:.2f}x")
    ax.set_ylabel("train-step samples/s")
    ax.set_title(f"Scaling: {scaling['speedup']:.2f}x on {scaling['devices']} NPUs")
    ax.legend(fontsize=7)
    return _svg(fig)


def plot_errors(consistency):
    plt = _pyplot()
    outs = consistency["outputs"]
    fig, ax = plt.subplots(figsize=(max(3.2, 0.8 * len(outs) + 2), 2.9))
    # Log scale: errors span 1e-8 (exact kernels) to 1 (broken ones); zero is drawn at the floor.
    vals = [max(o["rel_l2"], 1e-12) if math.isfinite(o["rel_l2"]) else 1e3 for o in outs]
    ax.bar([f"output {o['output']}" for o in outs], vals,
           color=["#55a868" if o["passed"] else "#c44e52" for o in outs])
    ax.axhline(consistency["max_error"], color="black", ls="--", label=f"max error {consistency['max_error']:g}")
    ax.set_yscale("log")
    ax.set_ylabel("relative L2 error vs CPU")
    ax.set_title("Per-output error")
    ax.legend(fontsize=7)
    return _svg(fig)


def _bytes(n):
    """'512 B', '3.5 KiB', '1.25 GiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _fmt(v, key=""):
    if v is None:
        return "<span class='none'>not set</span>"
    if key.endswith("_bytes") and isinstance(v, (int, float)) and not isinstance(v, bool):
        return html.escape(_bytes(v))
    if key.endswith("_share") and isinstance(v, float):
        return f"{v:.2%}"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def _figures(check, skip=()):
    rows = []
    for k, v in check.items():
        if k in skip or k == "passed" or isinstance(v, (list, dict)):
            continue
        rows.append(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v, k)}</td></tr>")
    return "<table class='fig'>" + "".join(rows) + "</table>"


def _outputs_table(outputs):
    head = "<tr><th>output</th><th>relative L2</th><th>max abs</th><th>cosine</th><th>result</th></tr>"
    rows = "".join(f"<tr><td>{o['output']}</td><td>{_fmt(o['rel_l2'])}</td><td>{_fmt(o['max_abs'])}</td>"
                   f"<td>{_fmt(o['cosine'])}</td><td class='{_CLASS[o['passed']]}'>{_WORD[o['passed']]}</td></tr>"
                   for o in outputs)
    return f"<table class='cov'>{head}{rows}</table>"


def _section(name, check, plot=None, extra="", caption=""):
    state = check.get("passed")
    body = _figures(check, skip=("note",)) + extra
    if plot:
        body += f"<div class='plot' data-plot='{name}'>{plot}</div>" + caption
    return (f"<section id='{name}'><h2>{name} <span class='{_CLASS[state]}'>{_WORD[state]}</span></h2>"
            f"{body}</section>")


def _coverage_table(coverage):
    rows = "".join(
        f"<tr class='{'' if o['placement'] == 'NPU' else 'warn'}'><td>{html.escape(o['op_type'])}</td>"
        f"<td>{html.escape(o['placement'])}</td><td>{o['count']}</td><td>{html.escape(','.join(o['dtypes']))}</td>"
        f"<td>{html.escape(','.join(o.get('compute_dtypes') or []))}</td><td>{html.escape(o.get('kernel', ''))}</td></tr>"
        for o in coverage["ops"])
    head = "<tr><th>op type</th><th>where</th><th>nodes</th><th>dtypes</th><th>computes in</th><th>kernel</th></tr>"
    verdict = "every op runs on the NPU" if coverage["fully_on_npu"] else "some ops fall back to the host or have no kernel"
    return (f"<section id='coverage'><h2>coverage</h2><p>{verdict} (precision mode "
            f"{html.escape(coverage['precision_mode'])})</p><table class='cov'>{head}{rows}</table></section>")


_CSS = """
body{font-family:sans-serif;max-width:980px;margin:1em auto;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;border-bottom:1px solid #ccc}
.pass{color:#fff;background:#2e7d32;padding:1px 6px;border-radius:3px}
.fail{color:#fff;background:#c62828;padding:1px 6px;border-radius:3px}
.skip{color:#fff;background:#757575;padding:1px 6px;border-radius:3px}
table{border-collapse:collapse;font-size:.9em}td,th{padding:2px 8px;text-align:left}
table.cov td,table.cov th,table.sum td,table.sum th{border:1px solid #ddd}
tr.warn{background:#fff3e0}.plot svg{max-width:100%;height:auto}.note{color:#8d6e00}.none{color:#888}
ol.phases{font-size:.85em;columns:2}
"""

# Marks the body once loaded so a headless browser can tell that every plot
# rendered (a non-empty box) and that nothing failed.
_SCRIPT = """
window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message))});
window.addEventListener('load',function(){
 var n=0;document.querySelectorAll('.plot svg').forEach(function(s){var b=s.getBBox();if(b.width>0&&b.height>0)n++;});
 document.body.setAttribute('data-plots',String(n));
 document.body.setAttribute('data-errors',String(window.__errors.length));
});
"""


def render_html(result):
    c = result["checks"]
    summary_rows = "".join(
        f"<tr><td><a href='#{k}'>{k}</a></td><td><span class='{_CLASS[v.get('passed')]}'>{_WORD[v.get('passed')]}</span>"
        f"</td><td>{html.escape(v.get('skipped', '') or v.get('error', '') or v.get('note', ''))}</td></tr>"
        for k, v in c.items())
    sections = []
    con = c["consistency"]
    extra = ""
    if con.get("first_divergence"):
        d = con["first_divergence"]
        extra = (f"<p class='note'>First diverging op: <b>{html.escape(str(d.get('node')))}</b> "
                 f"({html.escape(str(d.get('op_type')))}"
                 + (f", in layer {html.escape(str(d['layer']))}" if d.get("layer") else "")
                 + (f"), relative error {d['error']:.3g}</p>" if isinstance(d.get("error"), float) else ")</p>"))
    sections.append(_section("consistency", con, plot_errors(con) if con.get("outputs") else None,
                             (_outputs_table(con["outputs"]) if con.get("outputs") else "") + extra))
    tr = c["training"]
    setup = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v, k)}</td></tr>" for k, v in tr.get("setup", {}).items())
    setup = f"<p>Trained with:</p><table class='fig setup'>{setup}</table>" if setup else ""
    sections.append(_section("training", tr, plot_loss(tr) if tr.get("npu_loss") else None, extra=setup))
    sc = c["scaling"]
    sections.append(_section("scaling", sc, plot_scaling(sc) if "speedup" in sc else None,
                             f"<p class='note'>{html.escape(sc['note'])}</p>" if sc.get("note") else ""))
    m = c["memory"]
    sections.append(_section("memory", m, plot_memory(m) if m.get("timeline") else None,
                             caption=phase_list(m)))
    la = c["latency"]
    sections.append(_section("latency", la, plot_latency(la) if "batch_1" in la else None))
    verdict = "ready" if result["passed"] else "not ready"
    data = html.escape(json.dumps({k: v.get("passed") for k, v in c.items()}))
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>tf-adapter-check {html.escape(str(result['model']))}</title><style>{_CSS}</style>"
        f"<script>{_SCRIPT}</script></head><body data-verdict='{data}'>"
        f"<h1>tf-adapter-check: {html.escape(str(result['model']))} — "
        f"<span class='{_CLASS[result['passed']]}'>{verdict}</span></h1>"
        f"<p>batch {result['batch']}, precision mode {html.escape(result['precision_mode'])}, "
        f"backend {html.escape(str(result.get('backend', '')))}</p>"
        f"<table class='sum'><tr><th>check</th><th>result</th><th>note</th></tr>{summary_rows}</table>"
        + "".join(sections) + _coverage_table(result["coverage"]) + "</body></html>"
    )


def write_html(result, path):
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_html(result))
