//! `tf_adapter._native`: what the Python package needs from the plugin.
//! The module lives in the same shared library TensorFlow loads, so both see
//! the same devices, counters and configuration.

use crate::{config as cfg, counters, device};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::collections::HashMap;
use tfa_core::Error;
use tfa_ops::precision;

fn py_err(e: Error) -> PyErr {
    match e {
        Error::InvalidArgument(m) | Error::Unimplemented(m) => PyValueError::new_err(m),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// The configuration read from the TFA_* environment variables.
#[pyfunction]
fn config() -> PyResult<HashMap<&'static str, String>> {
    let c = cfg::get().map_err(py_err)?;
    Ok(HashMap::from([
        ("npu_count", c.npu_count.to_string()),
        ("memory", c.memory.to_string()),
        ("threads", c.threads.to_string()),
        ("backend", c.backend.clone()),
        ("spin_us", c.spin_us.to_string()),
        (
            "cpu_features",
            tfa_kernels::host::cpu::features().names().join(","),
        ),
    ]))
}

/// True once TensorFlow has loaded this library's platform (SE_InitPlugin ran).
#[pyfunction]
fn plugin_registered() -> bool {
    device::platform::registered()
}

/// Memory figures of NPU `ordinal`, in bytes.
#[pyfunction]
fn memory_info(ordinal: usize) -> PyResult<HashMap<&'static str, u64>> {
    let s = device::get(ordinal).map_err(py_err)?.memory.stats();
    Ok(HashMap::from([
        ("current", s.in_use),
        ("peak", s.peak),
        ("capacity", s.capacity),
        ("cached", s.cached),
        ("num_allocs", s.num_allocs),
        ("largest_alloc", s.largest_alloc),
        ("failed_allocs", s.failed_allocs),
    ]))
}

/// The message of the most recent failed NPU allocation not yet taken (None
/// when there was none): the reason behind TensorFlow's own allocation errors.
#[pyfunction]
fn take_oom_message() -> PyResult<Option<String>> {
    Ok(device::all()
        .map_err(py_err)?
        .iter()
        .filter_map(|n| n.memory.take_last_failure())
        .last())
}

/// Resets the peak of NPU `ordinal` to its current usage.
#[pyfunction]
fn reset_memory_stats(ordinal: usize) -> PyResult<()> {
    device::get(ordinal).map_err(py_err)?.memory.reset_peak();
    Ok(())
}

/// Runs of each NPU kernel since start (or the last reset), by op type.
#[pyfunction]
fn kernel_counts() -> HashMap<&'static str, u64> {
    counters::snapshot().into_iter().collect()
}

/// Seconds spent in each NPU kernel since start (or the last reset), by op type.
#[pyfunction]
fn kernel_times() -> HashMap<&'static str, f64> {
    counters::times().into_iter().collect()
}

#[pyfunction]
fn reset_kernel_counts() {
    counters::reset()
}

/// One op of the table: (name, family, summary, dtype names per type attribute).
type OpRow = (
    &'static str,
    &'static str,
    &'static str,
    HashMap<&'static str, Vec<&'static str>>,
);

/// The op table, as the coverage report and docs read it.
#[pyfunction]
fn op_table() -> Vec<OpRow> {
    tfa_ops::table()
        .iter()
        .map(|d| {
            let types = d
                .constraints
                .iter()
                .map(|c| (c.attr, c.types.iter().map(|t| t.name()).collect()))
                .collect();
            (d.name, d.family.title(), d.summary, types)
        })
        .collect()
}

/// The ops served by Python composites: (name, summary).
#[pyfunction]
fn composite_ops() -> Vec<(&'static str, &'static str)> {
    tfa_ops::composites::COMPOSITES
        .iter()
        .map(|c| (c.name, c.summary))
        .collect()
}

/// Supported formulations for ops the NPU does not run: {op type: hint}.
/// `[(fused node, replaced op types)]` the fusion pass would write for the
/// serialized GraphDef `graph` with the nodes in `npu` on an NPU.
#[pyfunction]
fn fusion_groups(graph: &[u8], npu: Vec<String>) -> PyResult<Vec<(String, Vec<String>)>> {
    let npu: std::collections::HashSet<String> = npu.into_iter().collect();
    crate::graph::fusion_groups(graph, &npu).map_err(pyo3::exceptions::PyValueError::new_err)
}

#[pyfunction]
fn alternatives() -> HashMap<&'static str, &'static str> {
    tfa_ops::hints::ALTERNATIVES.iter().copied().collect()
}

/// Sets the precision mode by name (`tf_adapter.set_precision_mode`).
#[pyfunction]
fn set_precision_mode(name: &str) -> PyResult<()> {
    precision::set_mode(precision::Mode::parse(name).map_err(py_err)?);
    Ok(())
}

/// (mode in force, mode requested): they differ when TensorFlow's
/// `auto_mixed_precision` option overrides the request.
#[pyfunction]
fn precision_mode() -> (&'static str, &'static str) {
    (precision::mode().name(), precision::requested_mode().name())
}

/// Records TensorFlow's `auto_mixed_precision` experimental option.
#[pyfunction]
#[pyo3(signature = (value=None))]
fn set_tf_auto_mixed_precision(value: Option<bool>) {
    precision::set_tf_auto_mixed_precision(value)
}

/// The mixed-precision lists: {"allow"|"infer"|"clear"|"deny": [op types]}.
#[pyfunction]
fn mixlist() -> HashMap<&'static str, Vec<String>> {
    let l = precision::lists();
    precision::Class::ALL
        .into_iter()
        .map(|c| (c.name(), l.list(c).iter().cloned().collect()))
        .collect()
}

/// Edits the lists: `edits` is [(list, "add"|"remove", op type)], applied in
/// order to the defaults (`reset`) or to the current lists.
#[pyfunction]
fn set_mixlist(edits: Vec<(String, String, String)>, reset: bool) -> PyResult<()> {
    let mut l = if reset {
        precision::Lists::default()
    } else {
        precision::lists()
    };
    for (list, action, op) in edits {
        let c = precision::Class::parse(&list).map_err(py_err)?;
        match action.as_str() {
            "add" => l.add(c, &op),
            "remove" => l.remove(c, &op),
            other => {
                return Err(PyValueError::new_err(format!(
                    "mixlist action '{other}' for {op}: expected 'add' or 'remove'"
                )))
            }
        }
    }
    precision::set_lists(l);
    Ok(())
}

/// The list (allow/infer/clear/deny) op type `op` is on.
#[pyfunction]
fn precision_class(op: &str) -> &'static str {
    precision::with_lists(|l| l.class(op)).name()
}

/// The dtype name op `op` with graph dtype `dtype` computes in under the mode
/// in force (per kernel call; the graph pass may change the graph dtype).
#[pyfunction]
fn compute_dtype(op: &str, dtype: &str) -> PyResult<&'static str> {
    let t = tfa_core::DType::ALL
        .iter()
        .chain(tfa_core::DType::COMPLEX)
        .copied()
        .find(|t| t.name() == dtype)
        .ok_or_else(|| PyValueError::new_err(format!("unknown dtype '{dtype}'")))?;
    Ok(precision::compute_dtype(precision::mode(), op, t).name())
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(config, m)?)?;
    m.add_function(wrap_pyfunction!(plugin_registered, m)?)?;
    m.add_function(wrap_pyfunction!(memory_info, m)?)?;
    m.add_function(wrap_pyfunction!(reset_memory_stats, m)?)?;
    m.add_function(wrap_pyfunction!(take_oom_message, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_counts, m)?)?;
    m.add_function(wrap_pyfunction!(reset_kernel_counts, m)?)?;
    m.add_function(wrap_pyfunction!(kernel_times, m)?)?;
    m.add_function(wrap_pyfunction!(op_table, m)?)?;
    m.add_function(wrap_pyfunction!(composite_ops, m)?)?;
    m.add_function(wrap_pyfunction!(alternatives, m)?)?;
    m.add_function(wrap_pyfunction!(fusion_groups, m)?)?;
    m.add_function(wrap_pyfunction!(set_precision_mode, m)?)?;
    m.add_function(wrap_pyfunction!(precision_mode, m)?)?;
    m.add_function(wrap_pyfunction!(set_tf_auto_mixed_precision, m)?)?;
    m.add_function(wrap_pyfunction!(mixlist, m)?)?;
    m.add_function(wrap_pyfunction!(set_mixlist, m)?)?;
    m.add_function(wrap_pyfunction!(precision_class, m)?)?;
    m.add_function(wrap_pyfunction!(compute_dtype, m)?)?;
    add_amp_functions(m)?;
    Ok(())
}

// ---- Graph-level precision (issue 7): the painter for the coverage report.

/// The graph pass's painting of a graph under the current precision mode and
/// lists: per node, the TensorFlow DataType it would compute in, 0 for
/// unchanged. `dtypes`: each node's float type attribute (0: none);
/// `inputs`: producers of its float data inputs.
#[pyfunction]
fn amp_paint(
    ops: Vec<String>,
    on_npu: Vec<bool>,
    dtypes: Vec<u32>,
    inputs: Vec<Vec<usize>>,
) -> PyResult<Vec<u32>> {
    let n = ops.len();
    if on_npu.len() != n || dtypes.len() != n || inputs.len() != n {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "amp_paint: ops, on_npu, dtypes and inputs must have the same length",
        ));
    }
    let nodes: Vec<tfa_ops::amp::Node> = ops
        .into_iter()
        .zip(on_npu)
        .zip(dtypes)
        .zip(inputs)
        .map(|(((op, on_npu), dt), inputs)| tfa_ops::amp::Node {
            op,
            on_npu,
            dtype: tfa_core::DType::from_tf(dt),
            inputs: inputs.into_iter().filter(|&p| p < n).collect(),
        })
        .collect();
    let lists = tfa_ops::precision::lists();
    Ok(
        tfa_ops::amp::paint(&nodes, tfa_ops::precision::mode(), &lists)
            .into_iter()
            .map(|d| d.map_or(0, |d| d.as_tf()))
            .collect(),
    )
}

fn add_amp_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(amp_paint, m)?)?;
    Ok(())
}
