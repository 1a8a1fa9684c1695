//! Einsum's shape rule: the equation parsed, ellipses expanded for the
//! inputs' ranks, and the output shape, with TensorFlow's messages.

use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};

/// A dim label: a letter's code, or `-j` for the j-th ellipsis dim from the
/// right.
pub type Label = i32;

/// A parsed einsum equation with ellipses expanded for the given input ranks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EinsumSpec {
    pub inputs: Vec<Vec<Label>>,
    pub output: Vec<Label>,
}

fn parse_subscripts(s: &str) -> Result<(Vec<Label>, Option<usize>)> {
    let mut labels = Vec::new();
    let mut ellipsis = None;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("...") {
            if ellipsis.is_some() {
                return Err(Error::InvalidArgument(format!(
                    "Found more than one ellipsis in subscripts: {s}"
                )));
            }
            ellipsis = Some(labels.len());
            rest = &rest[3..];
        } else if c.is_ascii_alphabetic() {
            labels.push(c as Label);
            rest = &rest[1..];
        } else {
            return Err(Error::InvalidArgument(format!(
                "Invalid character '{c}' in einsum subscripts: {s}"
            )));
        }
    }
    Ok((labels, ellipsis))
}

/// Parses `equation` ("ab,bc->ac", with optional "...") for inputs of `ranks`.
pub fn einsum_spec(equation: &str, ranks: &[usize]) -> Result<EinsumSpec> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let parts: Vec<&str> = eq.split("->").collect();
    if parts.len() != 2 {
        return Err(Error::InvalidArgument(format!(
            "Expecting exactly one '->' in einsum equation: {equation}"
        )));
    }
    let ins: Vec<&str> = parts[0].split(',').collect();
    if ins.len() != ranks.len() {
        return Err(Error::InvalidArgument(format!(
            "Expecting {} input subscripts in equation '{equation}' but got: {}",
            ranks.len(),
            ins.len()
        )));
    }
    let mut inputs = Vec::new();
    let mut max_ell = 0usize;
    for (i, (sub, &rank)) in ins.iter().zip(ranks).enumerate() {
        let (named, ell) = parse_subscripts(sub)?;
        let labels = match ell {
            None => {
                if named.len() != rank {
                    return Err(Error::InvalidArgument(format!(
                        "Input {i} to einsum has rank {rank} but subscripts '{sub}' name {} dims",
                        named.len()
                    )));
                }
                named
            }
            Some(at) => {
                if named.len() > rank {
                    return Err(Error::InvalidArgument(format!(
                        "Input {i} to einsum has rank {rank} but subscripts '{sub}' name {} dims",
                        named.len()
                    )));
                }
                let e = rank - named.len();
                max_ell = max_ell.max(e);
                let mut v = named[..at].to_vec();
                v.extend((0..e).map(|j| -((e - j) as Label)));
                v.extend_from_slice(&named[at..]);
                v
            }
        };
        inputs.push(labels);
    }
    let (named, ell) = parse_subscripts(parts[1])?;
    let output = match ell {
        None if max_ell > 0 => {
            return Err(Error::InvalidArgument(format!(
                "Output contains {max_ell} broadcasting dimension(s) but no ellipsis (...) was found in the output subscripts."
            )))
        }
        None => named,
        Some(at) => {
            let mut v = named[..at].to_vec();
            v.extend((0..max_ell).map(|j| -((max_ell - j) as Label)));
            v.extend_from_slice(&named[at..]);
            v
        }
    };
    for (i, l) in output.iter().enumerate() {
        if output[..i].contains(l) {
            return Err(Error::InvalidArgument(format!(
                "Output subscripts of einsum equation '{equation}' repeat label '{}'",
                *l as u8 as char
            )));
        }
        if *l > 0 && !inputs.iter().any(|v| v.contains(l)) {
            return Err(Error::InvalidArgument(format!(
                "Einsum output subscripts for equation '{equation}' has label '{}' which is not present in the input subscripts",
                *l as u8 as char
            )));
        }
    }
    Ok(EinsumSpec { inputs, output })
}

/// Output shape of an einsum over inputs of `shapes`, with label-size checks.
pub fn einsum_shape(spec: &EinsumSpec, shapes: &[&[usize]]) -> Result<Vec<usize>> {
    let mut sizes: Vec<(Label, usize)> = Vec::new();
    for (labels, shape) in spec.inputs.iter().zip(shapes) {
        for (axis, (&l, &d)) in labels.iter().zip(shape.iter()).enumerate() {
            match sizes.iter_mut().find(|p| p.0 == l) {
                Some(p) if p.1 == d => {}
                Some(p) if l < 0 && (p.1 == 1 || d == 1) => p.1 = p.1.max(d),
                Some(p) => {
                    return Err(Error::InvalidArgument(format!(
                        "Expected dimension {} at axis {axis} of the input shaped {} but got dimension {d}",
                        p.1,
                        fmt_shape(shape)
                    )))
                }
                None => sizes.push((l, d)),
            }
        }
    }
    Ok(spec
        .output
        .iter()
        .map(|l| sizes.iter().find(|p| p.0 == *l).map_or(1, |p| p.1))
        .collect())
}
