//! 3-D window geometry (Conv3D, the 3-D pools and their gradients): output
//! sizes and padding per spatial dimension, TensorFlow's rules.

use super::window::{windowed_output, Padding};
use tfa_core::{Error, Result};

/// Window geometry of a 3-D op on an NDHWC tensor (convolutions and pools):
/// spatial sizes, window, strides and dilations in (depth, height, width).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolGeom {
    pub n: usize,
    pub input: [usize; 3],
    pub cin: usize,
    pub window: [usize; 3],
    pub cout: usize,
    pub strides: [usize; 3],
    pub dilations: [usize; 3],
    pub output: [usize; 3],
    /// Padding before each spatial dimension (SAME pads the rest after).
    pub pad: [usize; 3],
}

impl VolGeom {
    /// The geometry of `input` (NDHWC) under a `window` (depth, height,
    /// width), the 5-element `strides` and `dilations` (already checked:
    /// one in batch and channels) and `padding`.
    pub fn new(
        input: &[usize],
        window: [usize; 3],
        cout: usize,
        strides: &[i64],
        dilations: &[i64],
        padding: Padding,
    ) -> Result<VolGeom> {
        let mut g = VolGeom {
            n: input[0],
            input: [input[1], input[2], input[3]],
            cin: input[4],
            window,
            cout,
            strides: [0; 3],
            dilations: [1; 3],
            output: [0; 3],
            pad: [0; 3],
        };
        for i in 0..3 {
            let dil = dilations.get(i + 1).copied().unwrap_or(1);
            let dil = usize::try_from(dil).map_err(|_| {
                Error::InvalidArgument(format!("Dilation rate must be >= 1, but got {dil}"))
            })?;
            let dim = windowed_output(g.input[i], window[i], dil, strides[i + 1], padding, (0, 0))?;
            g.strides[i] = strides[i + 1] as usize;
            g.dilations[i] = dil;
            g.output[i] = dim.out;
            g.pad[i] = dim.pad_before;
        }
        Ok(g)
    }

    pub fn input_shape(&self) -> Vec<usize> {
        let [d, h, w] = self.input;
        vec![self.n, d, h, w, self.cin]
    }

    pub fn output_shape(&self) -> Vec<usize> {
        let [d, h, w] = self.output;
        vec![self.n, d, h, w, self.cout]
    }

    /// The DHWIO filter shape of a convolution.
    pub fn filter_shape(&self) -> Vec<usize> {
        let [d, h, w] = self.window;
        vec![d, h, w, self.cin, self.cout]
    }

    /// Output positions (rows of the output matrix).
    pub fn rows(&self) -> usize {
        self.n * self.output.iter().product::<usize>()
    }
}
