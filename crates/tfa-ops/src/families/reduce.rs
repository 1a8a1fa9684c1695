//! Reductions over axes and softmax.

use crate::OpDef;

pub(crate) const OPS: &[OpDef] = &[];
