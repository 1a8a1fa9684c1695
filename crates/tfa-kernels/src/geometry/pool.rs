//! Pooling geometry: the window of MaxPool/AvgPool and their gradients in
//! NHWC terms, with the checks and error classes of TensorFlow's pooling
//! kernels (`PoolParameters`, `pooling_ops_common.cc`).

use super::window::{check_explicit_paddings, windowed_output, ConvGeom, DataFormat, Padding};
use tfa_core::shape::fmt_shape;
use tfa_core::{Error, Result};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

impl PoolKind {
    pub(crate) fn op(self) -> &'static str {
        match self {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AvgPool",
        }
    }
}

/// Pool attributes as the op gives them (lists in data-format order).
#[derive(Copy, Clone, Debug)]
pub struct PoolAttrs<'a> {
    pub ksize: &'a [i64],
    pub strides: &'a [i64],
    pub padding: Padding,
    /// Empty unless `padding` is EXPLICIT (MaxPool only).
    pub explicit_paddings: &'a [i64],
    pub data_format: DataFormat,
}

/// Pool geometry: the window in NHWC terms (`conv.cin` input channels,
/// `conv.cout` output channels) and the depth window (1 for spatial pooling).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub conv: ConvGeom,
    pub depth_window: usize,
}

impl PoolGeom {
    pub fn output_shape(&self) -> Vec<usize> {
        self.conv.output_shape()
    }
}

/// Every window dimension positive (the message of TensorFlow's default
/// float32 pooling kernels).
fn check_ksize_positive(ksize: &[i64]) -> Result<()> {
    if ksize.iter().any(|&k| k <= 0) {
        let list: Vec<String> = ksize.iter().map(|k| k.to_string()).collect();
        return Err(Error::InvalidArgument(format!(
            "Sliding window ksize must be positive. The specified or inferred ksize is: {}",
            list.join(",")
        )));
    }
    Ok(())
}

/// The checks TensorFlow's pooling kernels make when they are constructed
/// (`MaxPoolingOp`, `AvgPoolingOp` and their gradients), in their order.
fn check_pool_attrs(a: &PoolAttrs) -> Result<()> {
    if a.ksize.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window ksize field must specify 4 dimensions".into(),
        ));
    }
    check_ksize_positive(a.ksize)?;
    if a.strides.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window stride field must specify 4 dimensions".into(),
        ));
    }
    check_explicit_paddings(a.padding, a.explicit_paddings, a.data_format)?;
    let [dn, ..] = a.data_format.dims();
    if a.ksize[dn] != 1 || a.strides[dn] != 1 {
        return Err(Error::Unimplemented(
            "Pooling is not yet supported on the batch dimension.".into(),
        ));
    }
    Ok(())
}

/// The pool's windows on an input of `[n, h, w, c]` (in `a.data_format`):
/// TensorFlow's `PoolParameters`, with its error classes. A depth stride
/// with a depth window of 1 is ignored, as TensorFlow ignores it.
pub fn pool_geometry(kind: PoolKind, input: &[usize], a: &PoolAttrs) -> Result<PoolGeom> {
    check_pool_attrs(a)?;
    if input.len() != 4 {
        return Err(Error::InvalidArgument(format!(
            "tensor_in_shape must have 2 spatial dimensions. {} {}",
            input.len(),
            match a.data_format {
                DataFormat::Nhwc => "NHWC",
                DataFormat::Nchw => "NCHW",
            }
        )));
    }
    let [_, dh, dw, dc] = a.data_format.dims();
    let [n, h, w, c] = a.data_format.nhwc(input);
    // All positive (`check_pool_attrs`).
    let (kh, kw, kd) = (
        a.ksize[dh] as usize,
        a.ksize[dw] as usize,
        a.ksize[dc] as usize,
    );
    if kd != 1 && (kh != 1 || kw != 1) {
        return Err(Error::Unimplemented(
            "MaxPooling supports exactly one of pooling across depth or pooling across width/height."
                .into(),
        ));
    }
    let (eh, ew) = if a.padding == Padding::Explicit {
        let e = a.explicit_paddings;
        let (eh, ew) = ((e[2 * dh], e[2 * dh + 1]), (e[2 * dw], e[2 * dw + 1]));
        for (side, pad, window) in [
            ("Top", eh.0, kh),
            ("Bottom", eh.1, kh),
            ("Left", ew.0, kw),
            ("Right", ew.1, kw),
        ] {
            if pad >= window as i64 {
                return Err(Error::InvalidArgument(format!(
                    "{side} padding {pad} needs to be smaller than the window size {window}"
                )));
            }
        }
        (eh, ew)
    } else {
        ((0, 0), (0, 0))
    };
    let mut conv = ConvGeom {
        n,
        h,
        w,
        cin: c,
        kh,
        kw,
        cout: c,
        groups: 1,
        multiplier: 1,
        oh: h,
        ow: w,
        sh: 1,
        sw: 1,
        dh: 1,
        dw: 1,
        pad_top: 0,
        pad_left: 0,
        format: a.data_format,
        lowp: None,
    };
    if kd != 1 {
        // Depthwise max pooling: TensorFlow's PoolParameters, then its
        // kernels' own limits. Spatially a 1x1 window of stride 1: every
        // input pixel is an output pixel (as TensorFlow's DepthwiseMaxPool).
        if c % kd != 0 {
            return Err(Error::Unimplemented(
                "Depthwise max pooling requires the depth window to evenly divide the input depth"
                    .into(),
            ));
        }
        if a.strides[dc] != kd as i64 {
            return Err(Error::Unimplemented(
                "Depthwise max pooling requires the depth window to equal the depth stride".into(),
            ));
        }
        if kind == PoolKind::Avg {
            return Err(Error::Unimplemented(
                "Non-spatial pooling is not yet supported. Volunteers? :)".into(),
            ));
        }
        if a.padding == Padding::Explicit {
            return Err(Error::Unimplemented(
                "Depthwise max pooling does not support explicit padding.".into(),
            ));
        }
        conv.cout = c / kd;
        return Ok(PoolGeom {
            conv,
            depth_window: kd,
        });
    }
    // Strides are checked here only: TensorFlow's depth pooling ignores
    // the spatial ones, its spatial pooling the depth one.
    let y = windowed_output(h, kh, 1, a.strides[dh], a.padding, eh)?;
    let x = windowed_output(w, kw, 1, a.strides[dw], a.padding, ew)?;
    conv.sh = a.strides[dh] as usize;
    conv.sw = a.strides[dw] as usize;
    conv.oh = y.out;
    conv.ow = x.out;
    conv.pad_top = y.pad_before;
    conv.pad_left = x.pad_before;
    Ok(PoolGeom {
        conv,
        depth_window: 1,
    })
}

/// MaxPoolGrad's windows: the forward's, and no pooling across depth
/// (TensorFlow's `MaxPoolingGradOp` refuses a depth window or stride).
pub fn max_pool_grad_geometry(input: &[usize], a: &PoolAttrs) -> Result<PoolGeom> {
    check_pool_attrs(a)?;
    let [.., dc] = a.data_format.dims();
    if a.ksize[dc] != 1 || a.strides[dc] != 1 {
        return Err(Error::Unimplemented(
            "MaxPoolingGrad is not yet supported on the depth dimension.".into(),
        ));
    }
    pool_geometry(PoolKind::Max, input, a)
}

/// AvgPoolGrad's windows, as TensorFlow 2.21's `AvgPoolingGradOp` takes its
/// arguments: `orig` is `orig_input_shape`, `grad` the grad's shape (both in
/// `a.data_format`). TensorFlow spreads each grad element over its window
/// clipped to the input, over the grad's own rows, columns and images: a
/// grad whose spatial size differs from the forward output is taken (rows
/// or columns whose window would start past the input are an error), and so
/// is one with fewer images (the others get no gradient). A grad with
/// another depth, or more images, TensorFlow reads or writes out of bounds
/// (or scrambles): refused, as newer TensorFlow refuses every mismatch. The
/// geometry's `n`, `oh` and `ow` are the grad's. `None`: the output is empty
/// (nothing else is checked).
pub fn avg_pool_grad_geometry(
    orig: &[usize],
    grad: &[usize],
    a: &PoolAttrs,
) -> Result<Option<PoolGeom>> {
    // AvgPoolingGradOp's constructor: no ksize > 0 check, no depth check.
    if a.ksize.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window ksize field must specify 4 dimensions".into(),
        ));
    }
    if a.strides.len() != 4 {
        return Err(Error::InvalidArgument(
            "Sliding window strides field must specify 4 dimensions".into(),
        ));
    }
    let [dn, dh, dw, dc] = a.data_format.dims();
    if a.ksize[dn] != 1 || a.strides[dn] != 1 {
        return Err(Error::Unimplemented(
            "Pooling is not yet supported on the batch dimension.".into(),
        ));
    }
    if orig.len() != 4 || grad.len() != 4 {
        return Err(Error::Internal("AvgPoolGrad shapes must be 4-D".into()));
    }
    // The default float32 kernel checks the window before anything else;
    // TensorFlow's Eigen kernel would take a size-0 window (or a zero
    // stride with an empty output), making zeros.
    check_ksize_positive(a.ksize)?;
    let [n, h, w, c] = a.data_format.nhwc(orig);
    let (kh, kw) = (a.ksize[dh] as usize, a.ksize[dw] as usize);
    let y = windowed_output(h, kh, 1, a.strides[dh], a.padding, (0, 0))?;
    let x = windowed_output(w, kw, 1, a.strides[dw], a.padding, (0, 0))?;
    if orig.iter().product::<usize>() == 0 {
        return Ok(None);
    }
    if a.ksize[dc] != 1 {
        return Err(Error::Unimplemented(
            "Non-spatial pooling is not yet supported. Volunteers? :)".into(),
        ));
    }
    let [gn, gh, gw, gc] = a.data_format.nhwc(grad);
    if gc != c || gn > n {
        return Err(Error::InvalidArgument(format!(
            "Expected grad shape to be {}, but got {}",
            fmt_shape(&a.data_format.shape(n, y.out, x.out, c)),
            fmt_shape(grad)
        )));
    }
    let (sh, sw) = (a.strides[dh] as usize, a.strides[dw] as usize);
    if (gh > 0 && (gh - 1) * sh > h) || (gw > 0 && (gw - 1) * sw > w) {
        return Err(Error::InvalidArgument(
            "index * stride must be less than or equal to input size".into(),
        ));
    }
    Ok(Some(PoolGeom {
        conv: ConvGeom {
            n: gn,
            h,
            w,
            cin: c,
            kh,
            kw,
            cout: c,
            groups: 1,
            multiplier: 1,
            oh: gh,
            ow: gw,
            sh,
            sw,
            dh: 1,
            dw: 1,
            pad_top: y.pad_before,
            pad_left: x.pad_before,
            format: a.data_format,
            lowp: None,
        },
        depth_window: 1,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(
        ksize: &'a [i64],
        strides: &'a [i64],
        padding: Padding,
        explicit: &'a [i64],
    ) -> PoolAttrs<'a> {
        PoolAttrs {
            ksize,
            strides,
            padding,
            explicit_paddings: explicit,
            data_format: DataFormat::Nhwc,
        }
    }

    #[test]
    fn pool_checks_follow_tensorflow() {
        let x = [2, 6, 7, 4];
        let err = |k: &[i64], s: &[i64]| {
            pool_geometry(PoolKind::Max, &x, &attrs(k, s, Padding::Valid, &[])).unwrap_err()
        };
        // Batch and depth-window limits are UnimplementedError.
        assert!(matches!(
            err(&[2, 2, 2, 1], &[1, 1, 1, 1]),
            Error::Unimplemented(_)
        ));
        assert!(matches!(
            err(&[1, 1, 1, 3], &[1, 1, 1, 3]),
            Error::Unimplemented(_)
        ));
        assert!(matches!(
            err(&[1, 1, 1, 2], &[1, 1, 1, 1]),
            Error::Unimplemented(_)
        ));
        assert!(matches!(
            err(&[1, 2, 2, 2], &[1, 1, 1, 2]),
            Error::Unimplemented(_)
        ));
        // A depth stride beside a depth window of 1 is ignored.
        let g = pool_geometry(
            PoolKind::Avg,
            &x,
            &attrs(&[1, 2, 2, 1], &[1, 1, 1, 2], Padding::Valid, &[]),
        );
        assert_eq!(g.unwrap().output_shape(), vec![2, 5, 6, 4]);
        // Explicit padding must be smaller than the window.
        let a = attrs(
            &[1, 2, 2, 1],
            &[1, 1, 1, 1],
            Padding::Explicit,
            &[0, 0, 2, 0, 0, 0, 0, 0],
        );
        assert_eq!(
            pool_geometry(PoolKind::Max, &x, &a)
                .unwrap_err()
                .to_string(),
            "Top padding 2 needs to be smaller than the window size 2"
        );
    }

    #[test]
    fn avg_pool_grad_takes_what_tensorflow_takes() {
        let a = attrs(&[1, 2, 2, 1], &[1, 1, 1, 1], Padding::Valid, &[]);
        let x = [2, 6, 7, 4];
        // The forward output, a smaller grad, fewer images, extra rows.
        for grad in [[2, 5, 6, 4], [2, 4, 5, 4], [1, 5, 6, 4], [2, 7, 6, 4]] {
            let g = avg_pool_grad_geometry(&x, &grad, &a).unwrap().unwrap();
            assert_eq!(g.output_shape(), grad.to_vec());
        }
        // Rows whose window starts past the input; another depth; more images.
        for grad in [[2, 8, 6, 4], [2, 5, 6, 2], [2, 5, 6, 5], [3, 5, 6, 4]] {
            let e = avg_pool_grad_geometry(&x, &grad, &a).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{grad:?}: {e}");
        }
        // An empty output checks no more than the window and strides.
        let a = attrs(&[1, 1, 1, 2], &[1, 1, 1, 2], Padding::Valid, &[]);
        assert!(avg_pool_grad_geometry(&[0, 6, 7, 4], &[0, 6, 7, 4], &a)
            .unwrap()
            .is_none());
        let a = attrs(&[1, 2, 2, 1], &[1, 0, 1, 1], Padding::Valid, &[]);
        assert!(avg_pool_grad_geometry(&[0, 6, 7, 4], &[0, 5, 6, 4], &a).is_err());
    }

    #[test]
    fn pool_errors() {
        let a = PoolAttrs {
            ksize: &[2, 1, 1, 1],
            strides: &[1, 1, 1, 1],
            padding: Padding::Valid,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        assert_eq!(
            pool_geometry(PoolKind::Max, &[1, 2, 3, 6], &a)
                .unwrap_err()
                .to_string(),
            "Pooling is not yet supported on the batch dimension."
        );
        let a = PoolAttrs {
            ksize: &[1, 5, 1, 1],
            ..a
        };
        assert!(pool_geometry(PoolKind::Avg, &[1, 2, 3, 6], &a)
            .unwrap_err()
            .to_string()
            .contains("Computed output size would be negative"));
    }
}
