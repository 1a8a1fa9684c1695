//! `docs/ops.md`, generated from the table.

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
    let mut s = String::new();
    let _ = writeln!(s, "# Ops supported on the NPU\n");
    let _ = writeln!(
        s,
        "Generated from the op table in `crates/tfa-ops` ({} op types); do not edit by hand:\n\
         `TFA_BLESS=1 cargo test -p tfa-ops` rewrites it, and `cargo test` fails when it is stale.\n\
         \n\
         An op not listed here runs on the host through TensorFlow's CPU kernel (soft placement), \
         or raises an error naming it in strict mode. int32 arithmetic and shape ops run on \
         TensorFlow's own host-memory kernels for the device, as on GPUs.\n",
        ops.len()
    );
    let mut family = None;
    for d in ops {
        if family != Some(d.family) {
            family = Some(d.family);
            let _ = writeln!(s, "\n## {}\n", d.family.title());
            let _ = writeln!(s, "| Op | host | cuda | Notes |");
            let _ = writeln!(s, "|---|---|---|---|");
        }
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} |",
            d.name,
            dtypes(d, Backend::Host),
            dtypes(d, Backend::Cuda),
            d.summary
        );
    }
    s
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
