//! The arithmetic of an all-reduce over replicas that share memory: every
//! output receives the sum (or mean) of the same element of every input.
//!
//! Inputs are added in replica order, so all outputs are bit-identical and
//! the result does not depend on which thread reduces which slice. Half types
//! accumulate in float32 and round once (TensorFlow's ring rounds after each
//! addition).

use super::numeric::{Accumulate, Compute, Widen};

/// Elements reduced per block: the accumulator stays in registers/L1.
const BLOCK: usize = 256;

/// `outputs[r][i] = scale * sum_k inputs[k][i]` for every replica `r`.
/// `inputs` and `outputs` hold the same element range of each replica's
/// tensor (all of one length); `scale` is 1 for SUM and 1/replicas for MEAN.
pub fn reduce_into<T: Widen>(inputs: &[&[T]], outputs: &mut [&mut [T]], scale: f64) {
    let Some(first) = inputs.first() else {
        return;
    };
    let len = first.len();
    debug_assert!(inputs.iter().all(|s| s.len() == len));
    debug_assert!(outputs.iter().all(|s| s.len() == len));
    let scale = (scale != 1.0).then(|| T::W::from_f64(scale));
    let mut acc = [T::W::ZERO; BLOCK];
    let mut start = 0;
    while start < len {
        let n = BLOCK.min(len - start);
        let acc = &mut acc[..n];
        for (a, &x) in acc.iter_mut().zip(&first[start..start + n]) {
            *a = x.widen();
        }
        for input in &inputs[1..] {
            for (a, &x) in acc.iter_mut().zip(&input[start..start + n]) {
                *a = *a + x.widen();
            }
        }
        if let Some(s) = scale {
            for a in acc.iter_mut() {
                *a = *a * s;
            }
        }
        for out in outputs.iter_mut() {
            for (o, &a) in out[start..start + n].iter_mut().zip(acc.iter()) {
                *o = T::narrow(a);
            }
        }
        start += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::{bf16, f16};

    #[test]
    fn sums_and_means_into_every_output() {
        let a: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..1000).map(|i| 2.0 * i as f32).collect();
        let c: Vec<f32> = (0..1000).map(|i| -(i as f32) / 2.0).collect();
        let mut o = vec![vec![0f32; 1000]; 3];
        {
            let mut outs: Vec<&mut [f32]> = o.iter_mut().map(|v| v.as_mut_slice()).collect();
            reduce_into(&[&a, &b, &c], &mut outs, 1.0);
        }
        for out in &o {
            for (i, &v) in out.iter().enumerate() {
                assert_eq!(v, 2.5 * i as f32);
            }
        }
        let mut m = vec![vec![0f32; 1000]; 2];
        {
            let mut outs: Vec<&mut [f32]> = m.iter_mut().map(|v| v.as_mut_slice()).collect();
            reduce_into(&[&a, &b], &mut outs, 0.5);
        }
        assert_eq!(m[0][10], 15.0);
        assert_eq!(m[0], m[1]);
    }

    #[test]
    fn half_types_round_once() {
        // 1 + 2^-8 + 2^-8 in bfloat16 (ulp 2^-7): rounding after each add loses both
        // halves (ties to even), accumulating in float32 keeps them.
        let one = [bf16::from_f32(1.0)];
        let tiny = [bf16::from_f32(2f32.powi(-8))];
        let mut out = [bf16::ZERO];
        reduce_into(&[&one[..], &tiny[..], &tiny[..]], &mut [&mut out[..]], 1.0);
        assert_eq!(out[0].to_f32(), 1.0 + 2f32.powi(-7));
        let h = [f16::from_f32(0.5), f16::from_f32(0.25)];
        let mut hout = [f16::ZERO; 2];
        reduce_into(&[&h[..], &h[..]], &mut [&mut hout[..]], 0.5);
        assert_eq!(hout, h);
    }

    #[test]
    fn one_replica_and_empty_tensors() {
        let a = [1.5f64, -2.0];
        let mut out = [0f64; 2];
        reduce_into(&[&a[..]], &mut [&mut out[..]], 1.0);
        assert_eq!(out, a);
        let empty: [f32; 0] = [];
        reduce_into::<f32>(&[&empty[..], &empty[..]], &mut [], 1.0);
        reduce_into::<f32>(&[], &mut [], 1.0);
    }
}
