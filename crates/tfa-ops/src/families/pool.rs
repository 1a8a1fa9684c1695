//! Pooling: MaxPool, AvgPool.

use crate::OpDef;

pub(crate) const OPS: &[OpDef] = &[];
