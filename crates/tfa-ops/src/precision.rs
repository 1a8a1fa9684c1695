//! Precision modes and the mixed-precision op lists.
//!
//! TensorFlow's grappler `auto_mixed_precision` pass never rewrites nodes on a
//! plugin device, so tf_adapter owns precision: a process-wide mode, set from
//! Python (`tf_adapter.set_precision_mode`) or `TFA_PRECISION_MODE`, read by
//! the kernels (per call: which dtype a float32 matrix op multiplies in) and by
//! the graph pass (which nodes of a `tf.function` change dtype).
//!
//! The lists follow TensorFlow's and Intel's AMP: *allow* ops (matrix ops) run
//! in low precision, *infer* ops follow their low-precision inputs, *clear* ops
//! pass any dtype through unchanged, *deny* ops (numerically sensitive: exp,
//! log, softmax, reductions, losses) stay float32 and keep the infer/clear
//! ops they feed in float32. Ops on no list keep their dtype without holding
//! their neighbours (TensorFlow's rule).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::RwLock;
use tfa_core::{DType, Error, Result};

/// A precision mode. `allow_mix_precision` (no suffix) parses to the
/// backend's preferred low-precision type: bfloat16 on `host`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Mode {
    /// Every op computes in its graph dtype, as TensorFlow CPU does.
    MustKeepOriginDtype = 0,
    /// float16/bfloat16 ops compute in float32 (graph activations kept in
    /// float32 between NPU ops inside a `tf.function`).
    ForceFp32 = 1,
    /// float32 matrix ops multiply in bfloat16, accumulate and output float32.
    AllowFp32ToBf16 = 2,
    /// float32 matrix ops multiply in float16, accumulate and output float32.
    AllowFp32ToFp16 = 3,
    /// Automatic mixed precision with bfloat16.
    AllowMixPrecisionBf16 = 4,
    /// Automatic mixed precision with float16.
    AllowMixPrecisionFp16 = 5,
}

impl Mode {
    pub const ALL: [Mode; 6] = [
        Mode::MustKeepOriginDtype,
        Mode::ForceFp32,
        Mode::AllowFp32ToBf16,
        Mode::AllowFp32ToFp16,
        Mode::AllowMixPrecisionBf16,
        Mode::AllowMixPrecisionFp16,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::MustKeepOriginDtype => "must_keep_origin_dtype",
            Mode::ForceFp32 => "force_fp32",
            Mode::AllowFp32ToBf16 => "allow_fp32_to_bf16",
            Mode::AllowFp32ToFp16 => "allow_fp32_to_fp16",
            Mode::AllowMixPrecisionBf16 => "allow_mix_precision_bf16",
            Mode::AllowMixPrecisionFp16 => "allow_mix_precision_fp16",
        }
    }

    /// The mode named `s` (case-insensitive); `allow_mix_precision` is the
    /// backend's preferred mixed mode (bfloat16 on `host`).
    pub fn parse(s: &str) -> Result<Mode> {
        let s = s.trim().to_ascii_lowercase();
        if s == "allow_mix_precision" {
            return Ok(Mode::AllowMixPrecisionBf16);
        }
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
                Error::InvalidArgument(format!(
                    "unknown precision mode '{s}': expected one of {}, allow_mix_precision",
                    names.join(", ")
                ))
            })
    }

    /// The low-precision type of an `allow_*` mode.
    pub fn low_precision(self) -> Option<DType> {
        match self {
            Mode::AllowFp32ToBf16 | Mode::AllowMixPrecisionBf16 => Some(DType::BF16),
            Mode::AllowFp32ToFp16 | Mode::AllowMixPrecisionFp16 => Some(DType::F16),
            Mode::MustKeepOriginDtype | Mode::ForceFp32 => None,
        }
    }

    /// Automatic mixed precision (graph dtypes change)?
    pub fn is_mixed(self) -> bool {
        matches!(
            self,
            Mode::AllowMixPrecisionBf16 | Mode::AllowMixPrecisionFp16
        )
    }

    fn from_u8(v: u8) -> Mode {
        Mode::ALL
            .into_iter()
            .find(|m| *m as u8 == v)
            .unwrap_or(Mode::MustKeepOriginDtype)
    }
}

/// Where an op stands in automatic mixed precision.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Runs in low precision (matrix ops: where the speed is).
    Allow,
    /// Runs in low precision when an input comes from a low-precision op.
    Infer,
    /// Any dtype passes through unchanged (data movement, comparisons).
    Clear,
    /// Stays float32 (numerically sensitive).
    Deny,
}

impl Class {
    pub const ALL: [Class; 4] = [Class::Allow, Class::Infer, Class::Clear, Class::Deny];

    pub fn name(self) -> &'static str {
        match self {
            Class::Allow => "allow",
            Class::Infer => "infer",
            Class::Clear => "clear",
            Class::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Result<Class> {
        Class::ALL
            .into_iter()
            .find(|c| c.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown mixed-precision list '{s}': expected allow, infer, clear or deny"
                ))
            })
    }
}

/// Ops TensorFlow's AMP lists name that the op table does not declare, with
/// their class. Some still run on the NPU through TensorFlow's own
/// DEVICE_DEFAULT kernels (Identity N, Snapshot, StopGradient, ExpandDims,
/// Squeeze...), so the graph pass must see their class; the rest keep
/// TensorFlow's class so that `tf_adapter.mixlist()` reads like TensorFlow's
/// lists. An op of the table declares its class itself (`.amp(Class::Infer)`
/// after its declaration in `families/`), and a test checks that no name is
/// here as well.
pub const OUTSIDE_TABLE: &[(&str, Class)] = &[
    ("BatchMatMul", Class::Allow),
    ("BatchMatMulV3", Class::Allow),
    ("FusedBatchNormV3", Class::Infer),
    ("FusedBatchNormGradV3", Class::Infer),
    ("Gelu", Class::Infer),
    ("CheckNumerics", Class::Clear),
    ("Concat", Class::Clear),
    ("EnsureShape", Class::Clear),
    ("ExpandDims", Class::Clear),
    ("Gather", Class::Clear),
    ("IdentityN", Class::Clear),
    ("MaxPoolV2", Class::Clear),
    ("PreventGradient", Class::Clear),
    ("Snapshot", Class::Clear),
    ("Squeeze", Class::Clear),
    ("StopGradient", Class::Clear),
];

/// The four lists. An op is on at most one; an op on none is never made low
/// precision (`class` reports it as deny) but does not start deny propagation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lists {
    pub allow: BTreeSet<String>,
    pub infer: BTreeSet<String>,
    pub clear: BTreeSet<String>,
    pub deny: BTreeSet<String>,
}

/// The default lists: every op of the table by its declared class (TensorFlow's
/// and Intel's AMP classes: matrix ops allow, cheap float math infer, movement
/// and comparisons clear, exp/log/softmax/reductions/losses deny; Rsqrt is on
/// no list on purpose: as a deny root it would hold every multiply of Keras's
/// decomposed BatchNormalization in float32), and `OUTSIDE_TABLE`.
impl Default for Lists {
    fn default() -> Self {
        let mut lists = Lists {
            allow: BTreeSet::new(),
            infer: BTreeSet::new(),
            clear: BTreeSet::new(),
            deny: BTreeSet::new(),
        };
        let declared = crate::table().iter().filter_map(|d| Some((d.name, d.amp?)));
        for (op, class) in declared.chain(OUTSIDE_TABLE.iter().copied()) {
            lists.list_mut(class).insert(op.to_string());
        }
        lists
    }
}

impl Lists {
    pub fn list(&self, c: Class) -> &BTreeSet<String> {
        match c {
            Class::Allow => &self.allow,
            Class::Infer => &self.infer,
            Class::Clear => &self.clear,
            Class::Deny => &self.deny,
        }
    }

    fn list_mut(&mut self, c: Class) -> &mut BTreeSet<String> {
        match c {
            Class::Allow => &mut self.allow,
            Class::Infer => &mut self.infer,
            Class::Clear => &mut self.clear,
            Class::Deny => &mut self.deny,
        }
    }

    /// The class of op type `op` (deny when on no list).
    pub fn class(&self, op: &str) -> Class {
        [Class::Allow, Class::Infer, Class::Clear]
            .into_iter()
            .find(|&c| self.list(c).contains(op))
            .unwrap_or(Class::Deny)
    }

    /// Adds `op` to list `c`, taking it off any other list.
    pub fn add(&mut self, c: Class, op: &str) {
        for other in Class::ALL {
            self.list_mut(other).remove(op);
        }
        self.list_mut(c).insert(op.to_string());
    }

    /// Takes `op` off list `c` (it becomes deny unless on another list).
    pub fn remove(&mut self, c: Class, op: &str) {
        self.list_mut(c).remove(op);
    }
}

struct State {
    lists: Lists,
}

static MODE: AtomicU8 = AtomicU8::new(Mode::MustKeepOriginDtype as u8);
/// TensorFlow's `auto_mixed_precision` experimental option as the user set
/// it: 0 unset, 1 False, 2 True.
static TF_AMP: AtomicU8 = AtomicU8::new(0);
static STATE: RwLock<Option<State>> = RwLock::new(None);

/// Sets the mode tf_adapter was asked for.
pub fn set_mode(m: Mode) {
    MODE.store(m as u8, Ordering::SeqCst);
}

/// The mode tf_adapter was asked for (`set_precision_mode`).
pub fn requested_mode() -> Mode {
    Mode::from_u8(MODE.load(Ordering::Relaxed))
}

/// Records TensorFlow's `auto_mixed_precision` option (`None`: not set).
pub fn set_tf_auto_mixed_precision(v: Option<bool>) {
    TF_AMP.store(
        match v {
            None => 0,
            Some(false) => 1,
            Some(true) => 2,
        },
        Ordering::SeqCst,
    );
}

pub fn tf_auto_mixed_precision() -> Option<bool> {
    match TF_AMP.load(Ordering::Relaxed) {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    }
}

/// The mode in force. TensorFlow's own switch wins when the user set it:
/// `auto_mixed_precision: False` means `must_keep_origin_dtype`; `True`
/// keeps a requested mixed mode and otherwise means `allow_mix_precision`.
pub fn mode() -> Mode {
    let requested = requested_mode();
    match tf_auto_mixed_precision() {
        None => requested,
        Some(false) => Mode::MustKeepOriginDtype,
        Some(true) if requested.is_mixed() => requested,
        Some(true) => Mode::AllowMixPrecisionBf16,
    }
}

/// A copy of the current lists.
pub fn lists() -> Lists {
    with_lists(|l| l.clone())
}

/// Runs `f` on the current lists without copying them.
pub fn with_lists<R>(f: impl FnOnce(&Lists) -> R) -> R {
    let guard = STATE.read().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(s) => f(&s.lists),
        None => f(&DEFAULT_LISTS),
    }
}

static DEFAULT_LISTS: std::sync::LazyLock<Lists> = std::sync::LazyLock::new(Lists::default);

/// Replaces the lists (`tf_adapter.set_mixlist`).
pub fn set_lists(lists: Lists) {
    let mut guard = STATE.write().unwrap_or_else(|p| p.into_inner());
    *guard = Some(State { lists });
}

/// How one kernel call of op `op` with graph dtype `dtype` computes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Multiply in this type (float32 inputs rounded to it, float32
    /// accumulation): an allow-list float32 op under an `allow_*` mode.
    pub lowp: Option<DType>,
    /// Round float32 outputs to `lowp` too: mixed precision outside a graph
    /// rewrite (eager), as if the op were wrapped in casts.
    pub round_outputs: bool,
}

/// The plan for one call: the fast path is one atomic load.
pub fn plan(op: &str, dtype: DType) -> Plan {
    let m = mode();
    let Some(lowp) = m.low_precision() else {
        return Plan::default();
    };
    if dtype != DType::F32 || with_lists(|l| l.class(op)) != Class::Allow {
        return Plan::default();
    }
    Plan {
        lowp: Some(lowp),
        round_outputs: m.is_mixed(),
    }
}

/// The dtype op `op` computes in, for graph dtype `dtype`, under mode `m`
/// (coverage report). Per call: the graph pass may change a node's dtype
/// first (see `amp`).
pub fn compute_dtype(m: Mode, op: &str, dtype: DType) -> DType {
    match m.low_precision() {
        None if m == Mode::ForceFp32 && matches!(dtype, DType::F16 | DType::BF16) => DType::F32,
        Some(lowp) if dtype == DType::F32 && with_lists(|l| l.class(op)) == Class::Allow => lowp,
        _ => dtype,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_name() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.name()).unwrap(), m);
        }
        assert_eq!(
            Mode::parse("allow_mix_precision").unwrap(),
            Mode::AllowMixPrecisionBf16
        );
        assert!(Mode::parse("fast").is_err());
    }

    #[test]
    fn lists_are_disjoint_and_editable() {
        let l = Lists::default();
        let mut seen = BTreeSet::new();
        for c in Class::ALL {
            for op in l.list(c) {
                assert!(seen.insert(op.clone()), "{op} is on two lists");
            }
        }
        assert_eq!(l.class("MatMul"), Class::Allow);
        assert_eq!(l.class("Exp"), Class::Deny);
        assert_eq!(l.class("SomethingNew"), Class::Deny);
        let mut l = l;
        l.add(Class::Infer, "Exp");
        assert_eq!(l.class("Exp"), Class::Infer);
        assert!(!l.deny.contains("Exp"));
        l.remove(Class::Allow, "MatMul");
        assert_eq!(l.class("MatMul"), Class::Deny);
    }

    #[test]
    fn native_low_precision_ops_are_allow_ops() {
        let natives: Vec<&str> = crate::table()
            .iter()
            .filter(|d| d.native_low_precision)
            .map(|d| d.name)
            .collect();
        assert!(natives.contains(&"MatMul") && natives.contains(&"Conv2D"));
        for d in crate::table().iter().filter(|d| d.native_low_precision) {
            assert_eq!(d.amp, Some(Class::Allow), "{}", d.name);
        }
    }

    #[test]
    fn ops_outside_the_table_are_not_declared() {
        for (op, _) in OUTSIDE_TABLE {
            assert!(
                crate::find(op).is_none(),
                "{op} is in the table: declare its class there"
            );
        }
        let l = Lists::default();
        assert_eq!(l.class("Conv2D"), Class::Allow);
        assert_eq!(l.class("AddV2"), Class::Infer);
        assert_eq!(l.class("Snapshot"), Class::Clear);
        assert!(l.deny.contains("Softmax") && l.deny.contains("L2Loss"));
        assert!(!l.list(Class::Deny).contains("Rsqrt") && l.class("Rsqrt") == Class::Deny);
    }

    #[test]
    fn tensorflow_switch_wins() {
        // One test touches the process-wide state, so no other test races it.
        set_mode(Mode::AllowFp32ToBf16);
        assert_eq!(mode(), Mode::AllowFp32ToBf16);
        assert_eq!(plan("MatMul", DType::F32).lowp, Some(DType::BF16));
        assert!(!plan("MatMul", DType::F32).round_outputs);
        assert_eq!(plan("Exp", DType::F32), Plan::default());
        assert_eq!(plan("MatMul", DType::F16), Plan::default());
        set_tf_auto_mixed_precision(Some(false));
        assert_eq!(mode(), Mode::MustKeepOriginDtype);
        assert_eq!(plan("MatMul", DType::F32), Plan::default());
        set_tf_auto_mixed_precision(Some(true));
        assert_eq!(mode(), Mode::AllowMixPrecisionBf16);
        set_mode(Mode::AllowMixPrecisionFp16);
        assert_eq!(mode(), Mode::AllowMixPrecisionFp16);
        assert!(plan("Conv2D", DType::F32).round_outputs);
        set_tf_auto_mixed_precision(None);
        set_mode(Mode::ForceFp32);
        assert_eq!(compute_dtype(mode(), "Relu", DType::F16), DType::F32);
        set_mode(Mode::MustKeepOriginDtype);
        assert_eq!(compute_dtype(mode(), "Relu", DType::F16), DType::F16);
    }
}
