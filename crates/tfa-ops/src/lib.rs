//! THE OP MAPPING. Each supported TensorFlow op is declared once, in the file
//! of its family under `families/`: its type constraints, the attributes its
//! kernel reads, host-memory arguments, its spec (checks and shape rule,
//! `spec`), the kernel per backend and its mixed-precision class (`.amp(...)`,
//! from which `precision`'s lists are built). Ops the NPU serves otherwise are
//! declared beside the table: Python composites (`composites`) and plugin
//! glue (`glue`); `kind(op)` says which. The plugin registers kernels from
//! this table, the coverage report reads it, and `docs/ops.md` is generated
//! from it (`cargo test -p tfa-ops` checks the file is current; `TFA_BLESS=1`
//! rewrites it).

pub mod amp;
pub mod attrs;
pub mod composites;
pub mod context;
pub mod docs;
pub(crate) mod families;
pub mod glue;
pub mod hints;
pub mod precision;
pub mod registry;
pub mod spec;
#[cfg(test)]
pub(crate) mod testing;

pub use attrs::{AttrKind, AttrSpec, AttrValue, Attrs};
pub use context::OpContext;
pub use families::fused::{fusable, FUSED_TYPES, PRODUCTS};
pub use glue::{kind, Kind};
pub use registry::{
    custom_ops, find, table, Backend, CustomOpDef, Family, KernelFn, OpDef, TypeConstraint,
};
pub use spec::{OutputPlan, ShapeFn, Spec};
