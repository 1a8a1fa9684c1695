//! Node attributes a kernel reads. The plugin reads the declared ones once, when
//! TensorFlow constructs the kernel, so compute never parses attributes.

use tfa_core::{DType, Error, Result};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Bool,
    Int,
    /// An `int` attribute TensorFlow's kernel reads into an int32 (axes,
    /// masks): out of int32 range it fails the kernel's construction.
    Int32,
    Float,
    Type,
    String,
    IntList,
    /// A `shape` attribute: dimensions, -1 where unknown.
    Shape,
    /// A `list(int)` TensorFlow's kernel reads as `std::vector<int32>`
    /// (strides, ksize, dilations), range-checked like `Int32`.
    Int32List,
}

impl AttrKind {
    /// The value of an int or int-list attribute of this kind, as TensorFlow's
    /// `GetAttr` gives it to a kernel: int32 kinds must be in int32 range
    /// (TensorFlow: "Attr strides has value 4294967297 out of range for an
    /// int32"). Every op reading an int32 attribute goes through this check.
    pub fn int_value(self, name: &str, values: Vec<i64>) -> Result<AttrValue> {
        if matches!(self, AttrKind::Int32 | AttrKind::Int32List) {
            if let Some(v) = values.iter().find(|&&v| i32::try_from(v).is_err()) {
                return Err(Error::InvalidArgument(format!(
                    "Attr {name} has value {v} out of range for an int32"
                )));
            }
        }
        match (self, values.as_slice()) {
            (AttrKind::Int | AttrKind::Int32, &[v]) => Ok(AttrValue::Int(v)),
            (AttrKind::IntList | AttrKind::Int32List, _) => Ok(AttrValue::IntList(values)),
            _ => Err(Error::Internal(format!(
                "attribute '{name}' is not a {self:?} attribute"
            ))),
        }
    }
}

/// An attribute a kernel needs: its name in the TensorFlow OpDef and its kind.
#[derive(Copy, Clone, Debug)]
pub struct AttrSpec {
    pub name: &'static str,
    pub kind: AttrKind,
}

impl AttrSpec {
    /// For attribute tables: `AttrSpec::new("strides", AttrKind::Int32List)`.
    pub const fn new(name: &'static str, kind: AttrKind) -> AttrSpec {
        AttrSpec { name, kind }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int32_kinds_are_range_checked() {
        let big = (1i64 << 32) + 1;
        let err = AttrKind::Int32List
            .int_value("strides", vec![1, big, 1, 1])
            .unwrap_err();
        assert_eq!(
            err,
            Error::InvalidArgument(
                "Attr strides has value 4294967297 out of range for an int32".into()
            )
        );
        assert!(AttrKind::Int32
            .int_value("axis", vec![-(1 << 31) - 1])
            .is_err());
        assert_eq!(
            AttrKind::Int32.int_value("axis", vec![-(1 << 31)]),
            Ok(AttrValue::Int(-(1 << 31)))
        );
        // int64 kinds take any value.
        assert_eq!(
            AttrKind::IntList.int_value("explicit_paddings", vec![big]),
            Ok(AttrValue::IntList(vec![big]))
        );
        assert_eq!(
            AttrKind::Int.int_value("num_split", vec![big]),
            Ok(AttrValue::Int(big))
        );
    }
}
