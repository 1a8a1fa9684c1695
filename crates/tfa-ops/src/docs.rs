//! `docs/ops.md`, generated from the table.

use crate::precision::{Class, Lists};
use crate::{table, Backend, OpDef};
use std::fmt::Write;

fn dtypes(d: &OpDef, backend: Backend) -> String {
    if d.kernel(backend).is_none() {
        return "—".into();
    }
    let per_attr: Vec<String> = d
        .constraints
        .iter()
        .map(|c| {
            let names: Vec<&str> = c.types.iter().map(|t| t.name()).collect();
            if d.constraints.len() > 1 {
                format!("{}: {}", c.attr, names.join(", "))
            } else {
                names.join(", ")
            }
        })
        .collect();
    if per_attr.is_empty() {
        "any".into()
    } else {
        per_attr.join("; ")
    }
}

/// The Markdown text of docs/ops.md.
pub fn ops_markdown() -> String {
    let ops = table();
    let lists = Lists::default();
    let mut s = String::new();
    let _ = writeln!(s, "# Ops supported on the NPU\n");
    let _ = writeln!(
        s,
        "Generated from the op table in `crates/tfa-ops` ({} op types); do not edit by hand:\n\
         `TFA_BLESS=1 cargo test -p tfa-ops` rewrites it, and `cargo test` fails when it is stale.\n\
         \n\
         An op not listed here runs on the host through TensorFlow's CPU kernel (soft placement), \
         or raises an error naming it in strict mode. int32 arithmetic and shape ops run on \
         TensorFlow's own host-memory kernels for the device, as on GPUs.\n\n\
         Every op is declared as spec + kernels (see \"How to add an op\"): its checks and \
         shape rule (the spec, the same for every backend) run before, and apart from, its kernel.\n",
        ops.len()
    );
    let mut family = None;
    for d in ops {
        if family != Some(d.family) {
            family = Some(d.family);
            let _ = writeln!(s, "\n## {}\n", d.family.title());
            let _ = writeln!(s, "| Op | host | cuda | AMP | Notes |");
            let _ = writeln!(s, "|---|---|---|---|---|");
        }
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} |",
            d.name,
            dtypes(d, Backend::Host),
            dtypes(d, Backend::Cuda),
            d.amp.map_or("—", |c| c.name()),
            d.summary
        );
    }
    composites_section(&mut s);
    glue_section(&mut s);
    mixlist_section(&mut s, &lists);
    how_to_add_section(&mut s);
    s
}

/// How an op gets here, with the one-declaration form as the example.
fn how_to_add_section(s: &mut String) {
    s.push_str(
        r#"
## How to add an op

A float elementwise op is one line in each of two places. `Softsign` (Keras's
`softsign` activation) and its gradient were added this way:

1. The map, in `crates/tfa-kernels/src/host/maps.rs`: its scalar body on the
   float the tensor type computes in (`x` widened; `r(...)` rounds a partial
   result to the tensor type where TensorFlow's Eigen expression does, so
   float16/bfloat16 results match TensorFlow's bit for bit). The loop, the
   AVX-512/AVX2 code paths, buffer reuse and the dtype dispatch are shared.

   ```rust
   maps1! {
       Softsign(x; r) = x / r(x.abs() + W::ONE);
   }
   maps2! {
       SoftsignGrad(g, x; r) = { let d = r(x.abs() + W::ONE); g / r(d * d) };
   }
   ```

   An op with a float attribute names it after the input:
   `LeakyRelu(x, alpha; r) = if x > W::ZERO { x } else { x * r(alpha) };`

2. The TensorFlow op, in `crates/tfa-ops/src/families/maps.rs`: its name, the
   map, one line for this page.

   ```rust
   map!("Softsign", unary: Softsign, "x / (abs(x) + 1)").amp(Class::Infer),
   map!("SoftsignGrad", grad: SoftsignGrad, "softsign gradient: g / (abs(x) + 1)^2").amp(Class::Infer),
   ```

   (`map!("LeakyRelu", unary: LeakyRelu, attr "alpha", "...")` passes the
   attribute; `.amp(Class::Infer)` puts the op on a mixed-precision list —
   allow, infer, clear or deny, see below —, and an op without it is on
   none.)

The plugin registers the kernels from the table; this page, the coverage
report (`tf_adapter.coverage`), the mixed-precision lists and strict mode read
the same table. If `crates/tfa-ops/src/hints.rs` suggested a formulation for it, delete that
line (a test fails while an op with a kernel still has one). Then
`TFA_BLESS=1 cargo test -p tfa-ops` regenerates this page, and a test in
`tests/python/test_elementwise.py` (the op's name and a lambda in `UNARY`)
compares it against TensorFlow CPU over random shapes and every float dtype.

Ops with attributes, several outputs or their own shape rules are declared
with `op_t!` or `spec_op!` in the family file they belong to
(`crates/tfa-ops/src/families/`), with the kernel in the matching
`crates/tfa-kernels/src/host/` file; kernels know nothing about TensorFlow.
The attributes a kernel reads are listed inline
(`op_t!(..., attrs: ["axis": Int32], |c| ...)`) or, when several ops share
them, as one list (`attr_list: POOL_ATTRS`): lists are `AttrSpec::new(name,
kind)` entries, and longer ones are built from shorter ones with `concat`
(`MAX_POOL_ATTRS` is `POOL_ATTRS` and `explicit_paddings`).

### Spec + kernels

A new op with a shape rule of its own is declared as two halves
(`crates/tfa-ops/src/spec.rs`). Its *spec* makes TensorFlow's checks on the
attributes and input shapes and returns a plan: the validated geometry (the
backend-neutral shape rules live in `crates/tfa-kernels/src/geometry/`) and
the outputs. Each backend's *kernel* runs a plan. `MatMul`:

```rust
struct MatMul;

impl Spec for MatMul {
    type Plan = (MatMulParams, OutputPlan);

    fn plan(ctx: &dyn OpContext) -> Result<Self::Plan> {
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        let p = MatMulParams {
            transpose_a: ctx.attrs().bool("transpose_a")?,
            transpose_b: ctx.attrs().bool("transpose_b")?,
            lowp: ctx.matrix_lowp(),
        };
        let (m, _, n) = matmul_dims(&a.shape, &b.shape, p)?;
        Ok((p, OutputPlan::new(a.dtype, vec![m, n])))
    }

    fn outputs((_, out): &Self::Plan) -> Vec<OutputPlan> {
        vec![out.clone()]
    }
}

impl Kernel<MatMul> for Host {
    fn run(ctx: &dyn OpContext, (p, out): &(MatMulParams, OutputPlan)) -> Result<()> {
        let (a, b) = (ctx.input(0)?, ctx.input(1)?);
        matmul(&a, &b, &mut allocate(ctx, 0, out)?, *p)
    }
}
```

and in the table `op_t!("MatMul", MatMul, TYPES, "...", attrs: [...], spec:
MatMul).amp(Class::Allow).native_low_precision()` (the second: its kernel
multiplies in bfloat16/float16 itself under an `allow_*` mode, rather than
being handed rounded inputs). The table then holds the shape rule (`OpDef::shape_rule`: a
node's outputs before it runs) and the host kernel (plan, then run); a CUDA
kernel is one more `impl Kernel<MatMul> for Cuda`, with the checks shared.
`testing::plan` runs a spec alone in Rust tests, and
`spec::tests::shape_rules_name_what_the_host_kernels_allocate` checks every
op's shape rule against what its host kernel allocates over random cases
(it fails until a new op has cases there; elementwise ops get theirs from
the table). Most ops declare both halves inline, the plan a type that
knows its outputs (`spec::Outputs`: an `OutputPlan`, or one with what
else the kernel needs):

```rust
op_t!("AddV2", Elementwise, ARITH_C64, "x + y with broadcasting",
      plan: |c| broadcast(c) => OutputPlan, run: |c, p| binary(c, p, BinaryOp::Add)),
```

which the elementwise family writes `ew_op!("AddV2", ARITH_C64, "x + y with
broadcasting", broadcast => binary(BinaryOp::Add))`. `spec_op!(plan: ...,
run: ..., def: { ... })` declares an `OpDef` with more type attributes or
host-memory arguments, and every `map!` op (above) is a spec with its map
as the host kernel. A spec reads input shapes, the
values of host-memory inputs and attributes only; checks on data (label
ranges, scatter indices) stay in the kernel.
"#,
    );
}

/// The ops served by Python composites (`crate::composites`).
fn composites_section(s: &mut String) {
    let _ = writeln!(
        s,
        "\n## Resource-variable ops (Python composites)\n\n\
         On a variable living on an NPU these ops run as a composite of the ops above \
         (`python/tf_adapter/_resource_ops.py`, update formulas in `_training_rules.py`): TensorFlow 2.21 does not export the variable \
         C API a kernel would need. Variables on other devices keep TensorFlow's kernels. \
         float types and int64 (int32 variables live on the host, as on GPUs).\n"
    );
    let _ = writeln!(s, "| Op | How |");
    let _ = writeln!(s, "|---|---|");
    for c in crate::composites::COMPOSITES {
        let _ = writeln!(s, "| `{}` | {} |", c.name, c.summary);
    }
}

/// The ops the plugin registers by hand (`crate::glue`).
fn glue_section(s: &mut String) {
    let _ = writeln!(
        s,
        "\n## Plugin glue\n\n\
         Registered by the plugin itself (`crates/tfa-plugin`), with no accelerator kernel \
         behind them: they hand tensors over through TensorFlow's C API.\n"
    );
    let _ = writeln!(s, "| Op | What |");
    let _ = writeln!(s, "|---|---|");
    for g in crate::glue::GLUE {
        let _ = writeln!(s, "| `{}` | {} |", g.name, g.summary);
    }
}

/// The default mixed-precision lists, every op on them (also ops the NPU
/// does not run, which a user's graph may still contain).
fn mixlist_section(s: &mut String, lists: &Lists) {
    let _ = writeln!(
        s,
        "\n## Mixed-precision lists\n\n\
         The `AMP` column above (— for an op on no list) and the lists below drive the `allow_*` precision modes \
         (`tf_adapter.set_precision_mode`). *allow*: float32 ops multiply in bfloat16/float16 \
         (float32 accumulation); *infer*: low precision when an input is; *clear*: any dtype \
         passes through; *deny*: kept float32, with the infer/clear ops they feed. Ops on no list \
         keep their dtype without holding their neighbours in float32 (TensorFlow's rule). Edit them with a JSON \
         file (`TFA_MIXLIST` or `tf_adapter.set_mixlist(path)`), e.g. \
         `{{\"allow\": {{\"add\": [\"Conv3D\"]}}, \"deny\": {{\"add\": [\"Tanh\"]}}}}`.\n"
    );
    for c in Class::ALL {
        let names: Vec<String> = lists.list(c).iter().map(|n| format!("`{n}`")).collect();
        let _ = writeln!(s, "- **{}**: {}", c.name(), names.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_ops_md_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ops.md");
        let want = ops_markdown();
        if std::env::var_os("TFA_BLESS").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/ops.md is stale: run `TFA_BLESS=1 cargo test -p tfa-ops`"
        );
    }
}
