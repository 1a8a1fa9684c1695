//! Times float32 Conv2D on every distinct ResNet50 layer shape (NHWC) and
//! prints ms, GFLOP/s and the model-weighted total, to see where a batch
//! size loses time: `cargo run --release -p tfa-kernels --example
//! conv_layers_bench -- [batch] [repeats] [epilogue]`; with a third
//! argument each convolution runs a Relu epilogue as `_TfaFused` does, and
//! with `filter` as the third argument it times each layer's filter
//! gradient (`Conv2DBackpropFilter`) instead.
use std::time::Instant;
use tfa_core::{TensorMut, TensorView};
use tfa_kernels::geometry::window::{conv2d_geometry, ConvPass, DataFormat, Padding, WindowAttrs};
use tfa_kernels::host::conv::{conv2d, conv2d_with_epilogue};
use tfa_kernels::host::conv_grad::{conv_backprop_filter, ConvKind};

/// (input h = w, cin, k, cout, stride, times in Keras' ResNet50 v1, whose
/// stride-2 blocks stride their first 1x1 convolutions; the stem's 7x7 takes
/// an explicitly padded input).
const LAYERS: &[(usize, usize, usize, usize, usize, usize)] = &[
    (230, 3, 7, 64, 2, 1),
    (56, 64, 1, 64, 1, 1),
    (56, 64, 3, 64, 1, 3),
    (56, 64, 1, 256, 1, 4),
    (56, 256, 1, 64, 1, 2),
    (56, 256, 1, 128, 2, 1),
    (28, 128, 3, 128, 1, 4),
    (28, 128, 1, 512, 1, 4),
    (56, 256, 1, 512, 2, 1),
    (28, 512, 1, 128, 1, 3),
    (28, 512, 1, 256, 2, 1),
    (14, 256, 3, 256, 1, 6),
    (14, 256, 1, 1024, 1, 6),
    (28, 512, 1, 1024, 2, 1),
    (14, 1024, 1, 256, 1, 5),
    (14, 1024, 1, 512, 2, 1),
    (7, 512, 3, 512, 1, 3),
    (7, 512, 1, 2048, 1, 3),
    (14, 1024, 1, 2048, 2, 1),
    (7, 2048, 1, 512, 1, 2),
];

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (batch, reps) = (
        args.first().copied().unwrap_or(1),
        args.get(1).copied().unwrap_or(20),
    );
    let mode = std::env::args().nth(3);
    let filter_grad = mode.as_deref() == Some("filter");
    let fused = mode.is_some() && !filter_grad;
    // Relu on the finished rows, in place; when the convolution leaves the
    // epilogue to its caller, the caller runs it over the whole output.
    let relu = |_row0: usize, rows: &mut [u8]| -> tfa_core::Result<()> {
        for v in rows.chunks_exact_mut(4) {
            let x = f32::from_ne_bytes([v[0], v[1], v[2], v[3]]).max(0.0);
            v.copy_from_slice(&x.to_ne_bytes());
        }
        Ok(())
    };
    let mut total = 0.0;
    let mut total_flop = 0.0;
    for &(hw, cin, k, cout, s, times) in LAYERS {
        let padding = if k == 7 {
            Padding::Valid
        } else {
            Padding::Same
        };
        let strides = [1, s as i64, s as i64, 1];
        let a = WindowAttrs {
            strides: &strides,
            dilations: &[1, 1, 1, 1],
            padding,
            explicit_paddings: &[],
            data_format: DataFormat::Nhwc,
        };
        let (shape, fshape) = (vec![batch, hw, hw, cin], vec![k, k, cin, cout]);
        let g = conv2d_geometry(&shape, &fshape, &a, ConvPass::Forward).expect("geometry");
        let x: Vec<f32> = (0..shape.iter().product())
            .map(|i| (i % 13) as f32 * 0.1)
            .collect();
        let f: Vec<f32> = (0..fshape.iter().product())
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let mut y: Vec<f32> = (0..g.output_shape().iter().product())
            .map(|i| (i % 5) as f32 * 0.1)
            .collect();
        let mut f_grad = vec![0f32; f.len()];
        let mut best = f64::MAX;
        for _ in 0..reps {
            let t0 = Instant::now();
            let (xv, fv) = (
                TensorView::from_slice(shape.clone(), &x),
                TensorView::from_slice(fshape.clone(), &f),
            );
            if filter_grad {
                // The output buffer serves as dy.
                let dy = TensorView::from_slice(g.output_shape(), &y);
                let mut df = TensorMut::from_slice(fshape.clone(), &mut f_grad);
                conv_backprop_filter(ConvKind::Conv2D, &xv, &dy, &mut df, &g).expect("filter grad");
                best = best.min(t0.elapsed().as_secs_f64());
                continue;
            }
            let mut yv = TensorMut::from_slice(g.output_shape(), &mut y);
            if fused {
                if !conv2d_with_epilogue(&xv, &fv, &mut yv, &g, &relu).expect("conv2d") {
                    relu(0, yv.bytes_mut()).expect("relu");
                }
            } else {
                conv2d(&xv, &fv, &mut yv, &g).expect("conv2d");
            }
            best = best.min(t0.elapsed().as_secs_f64());
        }
        let flop = 2.0 * (batch * g.oh * g.ow * k * k * cin * cout) as f64;
        total += best * times as f64;
        total_flop += flop * times as f64;
        println!(
            "{hw:>3}x{hw:<3} {cin:>4} -> {cout:>4} k{k} s{s} x{times}: {:8.3} ms {:6.1} GFLOP/s",
            best * 1e3,
            flop / best * 1e-9
        );
    }
    println!(
        "all 53 convolutions: {:.1} ms, {:.1} GFLOP/s",
        total * 1e3,
        total_flop / total * 1e-9
    );
}
