//! Node attributes a kernel reads. The plugin reads the declared ones once, when
//! TensorFlow constructs the kernel, so compute never parses attributes.

use tfa_core::{DType, Error, Result};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Bool,
    Int,
    Float,
    Type,
    String,
    IntList,
    /// A `shape` attribute: dimensions, -1 where unknown.
    Shape,
}

/// An attribute a kernel needs: its name in the TensorFlow OpDef and its kind.
#[derive(Copy, Clone, Debug)]
pub struct AttrSpec {
    pub name: &'static str,
    pub kind: AttrKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    Bool(bool),
    Int(i64),
    Float(f32),
    Type(DType),
    String(String),
    IntList(Vec<i64>),
    /// Dimensions (-1 where unknown); `None`: unknown rank.
    Shape(Option<Vec<i64>>),
}

/// The attribute values of one node.
#[derive(Clone, Debug, Default)]
pub struct Attrs(Vec<(&'static str, AttrValue)>);

impl Attrs {
    pub fn new() -> Self {
        Attrs(Vec::new())
    }

    pub fn insert(&mut self, name: &'static str, v: AttrValue) {
        self.0.push((name, v));
    }

    fn get(&self, name: &str) -> Result<&AttrValue> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| {
                Error::Internal(format!("attribute '{name}' was not read for this kernel"))
            })
    }

    fn mismatch(name: &str, want: &str) -> Error {
        Error::Internal(format!("attribute '{name}' is not a {want}"))
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name)? {
            AttrValue::Bool(b) => Ok(*b),
            _ => Err(Self::mismatch(name, "bool")),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64> {
        match self.get(name)? {
            AttrValue::Int(v) => Ok(*v),
            _ => Err(Self::mismatch(name, "int")),
        }
    }

    pub fn float(&self, name: &str) -> Result<f32> {
        match self.get(name)? {
            AttrValue::Float(v) => Ok(*v),
            _ => Err(Self::mismatch(name, "float")),
        }
    }

    pub fn dtype(&self, name: &str) -> Result<DType> {
        match self.get(name)? {
            AttrValue::Type(v) => Ok(*v),
            _ => Err(Self::mismatch(name, "type")),
        }
    }

    pub fn string(&self, name: &str) -> Result<&str> {
        match self.get(name)? {
            AttrValue::String(v) => Ok(v),
            _ => Err(Self::mismatch(name, "string")),
        }
    }

    pub fn ints(&self, name: &str) -> Result<&[i64]> {
        match self.get(name)? {
            AttrValue::IntList(v) => Ok(v),
            _ => Err(Self::mismatch(name, "list(int)")),
        }
    }

    /// A `shape` attribute that must be fully defined (TensorFlow's
    /// `GetAttr(name, &TensorShape)`), with TensorFlow's errors.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        let dims = match self.get(name)? {
            AttrValue::Shape(Some(d)) => d,
            AttrValue::Shape(None) => {
                return Err(Error::InvalidArgument(format!(
                    "Attr {name} has an unknown rank: a fully defined shape is required"
                )))
            }
            _ => return Err(Self::mismatch(name, "shape")),
        };
        dims.iter()
            .map(|&d| {
                usize::try_from(d).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "Attr {name} has an unknown dimension ({d}): a fully defined shape is required"
                    ))
                })
            })
            .collect()
    }
}
