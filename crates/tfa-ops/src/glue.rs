//! Plugin glue: ops the plugin registers by hand, with no accelerator kernel
//! behind them on any backend. They move or meet tensors through TensorFlow's
//! C API (host-memory constants, the all-reduce meeting of the NPUs of one
//! process), so their code lives in `tfa-plugin`; they are declared here so
//! that docs/ops.md and `kind` know them (a plugin test checks that it
//! registers exactly these).

use crate::registry::OutsideOp;

/// Every glue op, sorted by name.
pub const GLUE: &[OutsideOp] = &[
    OutsideOp {
        name: "Const",
        summary: "dtype string only: the constant handed over in host memory (TensorFlow has no DEVICE_DEFAULT string constant, and every `tf.debugging.assert_*` message is one)",
    },
    OutsideOp {
        name: "TfaAllReduce",
        summary: "tf_adapter's own op: the NPUs of one process meet and sum (or average) a list of tensors in one pass (`tf_adapter.distribute.NpuAllReduce`)",
    },
];

/// How tf_adapter serves a TensorFlow op on the NPU.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A kernel of the op table (`crate::table`), one per backend.
    Kernel,
    /// A Python composite of table ops (`crate::composites`).
    PythonComposite,
    /// Registered by the plugin itself (`GLUE`).
    PluginGlue,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kernel => "kernel",
            Kind::PythonComposite => "python_composite",
            Kind::PluginGlue => "plugin_glue",
        }
    }
}

/// How op type `op` runs on the NPU; `None`: it does not (TensorFlow's own
/// DEVICE_DEFAULT kernels aside), so it falls back to the host or fails in
/// strict mode.
pub fn kind(op: &str) -> Option<Kind> {
    if crate::find(op).is_some() {
        Some(Kind::Kernel)
    } else if crate::composites::COMPOSITES.iter().any(|c| c.name == op) {
        Some(Kind::PythonComposite)
    } else if GLUE.iter().any(|g| g.name == op) {
        Some(Kind::PluginGlue)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_op_has_one_kind() {
        // Composites and glue: sorted, unique, not kernels, not each other.
        let composites = crate::composites::COMPOSITES;
        for list in [composites, GLUE] {
            for w in list.windows(2) {
                assert!(w[0].name < w[1].name, "{} / {}", w[0].name, w[1].name);
            }
            for o in list {
                assert!(crate::find(o.name).is_none(), "{} has a kernel too", o.name);
            }
        }
        for g in GLUE {
            let both = composites.iter().any(|c| c.name == g.name);
            assert!(!both, "{} is a composite too", g.name);
        }
        assert_eq!(kind("Conv2D"), Some(Kind::Kernel));
        assert_eq!(kind("ResourceApplyAdam"), Some(Kind::PythonComposite));
        assert_eq!(kind("TfaAllReduce"), Some(Kind::PluginGlue));
        assert_eq!(kind("NoSuchOp"), None);
    }
}
