//! Convolutions: Conv2D (NHWC/NCHW, SAME/VALID/EXPLICIT, strides, dilations) and depthwise.

use crate::OpDef;

pub(crate) const OPS: &[OpDef] = &[];
