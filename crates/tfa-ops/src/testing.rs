//! A vector-backed [`OpContext`]: runs an op of the table (argument checks,
//! shape rule and host kernel together) in Rust tests, without TensorFlow.
//! Type attributes are filled in from the op's constraints; outputs are
//! fresh buffers (nothing is forwarded or aliased in place).

use crate::{find, AttrValue, Attrs, Backend, OpContext, OpDef, OutputPlan};
use std::cell::RefCell;
use tfa_core::{DType, Element, Error, Result, TensorMut, TensorView};

/// A tensor owned by the test: 8-byte words so that every dtype is aligned.
#[derive(Clone, Debug)]
pub(crate) struct Tensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    words: Box<[u64]>,
    bytes: usize,
}

impl Tensor {
    pub fn new<T: Element>(shape: &[usize], data: &[T]) -> Tensor {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "shape vs data");
        let mut t = Tensor::zeros(T::DTYPE, shape);
        // SAFETY: `Element` types are plain data (see its contract), so
        // their bytes can be read as u8; the slice covers exactly `data`.
        let src = unsafe {
            std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data))
        };
        t.bytes_mut().copy_from_slice(src);
        t
    }

    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        let bytes = shape.iter().product::<usize>() * dtype.size();
        Tensor {
            dtype,
            shape: shape.to_vec(),
            words: vec![0u64; bytes.div_ceil(8)].into_boxed_slice(),
            bytes,
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `words` holds at least `bytes` bytes, exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr() as *mut u8, self.bytes) }
    }

    fn view(&self) -> TensorView<'_> {
        // SAFETY: `words` holds `bytes` readable bytes for the borrow of self.
        unsafe {
            TensorView::from_raw(
                self.dtype,
                self.shape.clone(),
                self.words.as_ptr() as *const u8,
                self.bytes,
            )
        }
    }

    /// The elements, which must be of type `T`.
    pub fn data<T: Element>(&self) -> Vec<T> {
        self.view().data::<T>().expect("output dtype").to_vec()
    }
}

/// Inputs and attributes of one node; after [`run`], its outputs.
pub(crate) struct VecContext {
    inputs: Vec<Tensor>,
    attrs: Attrs,
    // Boxed words never move once allocated, so views handed out stay valid
    // while the RefCell's vector grows.
    outputs: RefCell<Vec<Option<Tensor>>>,
}

impl VecContext {
    /// Output `i` (panics when the kernel did not write it: a test failure).
    pub fn output(&self, i: usize) -> Tensor {
        self.outputs
            .borrow()
            .get(i)
            .cloned()
            .flatten()
            .expect("output written")
    }

    pub fn num_outputs(&self) -> usize {
        self.outputs.borrow().len()
    }
}

/// Runs `op`'s host kernel on `inputs`, with `attrs` (non-type attributes)
/// and every type attribute of its constraints set to `dtype`, unless given.
pub(crate) fn run(
    op: &str,
    dtype: DType,
    inputs: Vec<Tensor>,
    attrs: &[(&'static str, AttrValue)],
) -> Result<VecContext> {
    let def = def(op)?;
    let kernel = def
        .kernel(Backend::Host)
        .ok_or_else(|| Error::Unimplemented(format!("{op}: no host kernel")))?;
    let ctx = context(def, dtype, inputs, attrs);
    kernel(&ctx)?;
    Ok(ctx)
}

/// `op`'s shape rule (its spec) on `inputs` and `attrs` as
/// for [`run`]: what its outputs will be, without running a kernel.
pub(crate) fn plan(
    op: &str,
    dtype: DType,
    inputs: Vec<Tensor>,
    attrs: &[(&'static str, AttrValue)],
) -> Result<Vec<OutputPlan>> {
    let def = def(op)?;
    let ctx = context(def, dtype, inputs, attrs);
    let outs = (def.shape_rule)(&ctx)?;
    assert_eq!(ctx.num_outputs(), 0, "{op}: the shape rule allocated");
    Ok(outs)
}

fn def(op: &str) -> Result<&'static OpDef> {
    find(op)
        .map(|(_, d)| d)
        .ok_or_else(|| Error::Unimplemented(format!("{op}: not in the table")))
}

fn context(
    def: &OpDef,
    dtype: DType,
    inputs: Vec<Tensor>,
    attrs: &[(&'static str, AttrValue)],
) -> VecContext {
    let mut all = Attrs::new();
    for (name, v) in attrs {
        all.insert(name, v.clone());
    }
    for c in def.constraints {
        if !attrs.iter().any(|(n, _)| *n == c.attr) {
            all.insert(c.attr, AttrValue::Type(dtype));
        }
    }
    VecContext {
        inputs,
        attrs: all,
        outputs: RefCell::new(Vec::new()),
    }
}

impl OpContext for VecContext {
    fn node_name(&self) -> &str {
        "test_node"
    }

    fn num_inputs(&self) -> usize {
        self.inputs.len()
    }

    fn input(&self, i: usize) -> Result<TensorView<'_>> {
        self.inputs
            .get(i)
            .map(Tensor::view)
            .ok_or_else(|| Error::Internal(format!("no input {i}")))
    }

    fn attrs(&self) -> &Attrs {
        &self.attrs
    }

    fn allocate_output(&self, i: usize, dtype: DType, shape: &[usize]) -> Result<TensorMut<'_>> {
        let mut outs = self.outputs.borrow_mut();
        if outs.len() <= i {
            outs.resize(i + 1, None);
        }
        if outs[i].is_some() {
            return Err(Error::Internal(format!("output {i} allocated twice")));
        }
        let t = outs[i].insert(Tensor::zeros(dtype, shape));
        let (ptr, len) = (t.words.as_mut_ptr() as *mut u8, t.bytes);
        // SAFETY: the boxed words live as long as `self` (an output is never
        // replaced: see the check above) and only this view writes them.
        Ok(unsafe { TensorMut::from_raw(dtype, shape.to_vec(), ptr, len) })
    }

    fn alias_output(&self, i: usize, input: usize, shape: &[usize]) -> Result<()> {
        let src = self.input(input)?;
        let mut out = self.allocate_output(i, src.dtype, shape)?;
        if out.bytes_mut().len() != src.bytes().len() {
            return Err(Error::Internal("alias with another size".into()));
        }
        out.bytes_mut().copy_from_slice(src.bytes());
        Ok(())
    }

    fn input_in_place(&self, input: usize, output: usize) -> Result<TensorMut<'_>> {
        let src = self.input(input)?;
        let mut out = self.allocate_output(output, src.dtype, &src.shape)?;
        out.bytes_mut().copy_from_slice(src.bytes());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! The adapters' argument checks and shape rules, run without TensorFlow
    //! (messages as TensorFlow's CPU kernels word them).
    use super::*;

    fn f32s(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor::new(shape, data)
    }

    fn i32s(data: &[i32]) -> Tensor {
        Tensor::new(&[data.len()], data)
    }

    fn scalar_i32(v: i32) -> Tensor {
        Tensor::new(&[], &[v])
    }

    fn err_text(r: Result<VecContext>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn add_broadcasts_rows() {
        let ctx = run(
            "AddV2",
            DType::F32,
            vec![
                f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]),
                f32s(&[3], &[10., 20., 30.]),
            ],
            &[],
        )
        .unwrap();
        let y = ctx.output(0);
        assert_eq!(y.shape, vec![2, 3]);
        assert_eq!(y.data::<f32>(), vec![11., 22., 33., 14., 25., 36.]);
    }

    #[test]
    fn add_rejects_incompatible_shapes() {
        let e = err_text(run(
            "AddV2",
            DType::F32,
            vec![f32s(&[2, 3], &[0.; 6]), f32s(&[2], &[0.; 2])],
            &[],
        ));
        assert!(e.contains("Incompatible shapes"), "{e}");
    }

    #[test]
    fn transpose_accepts_negative_perm_like_tensorflow() {
        let x = f32s(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let ctx = run(
            "Transpose",
            DType::F32,
            vec![x, i32s(&[-1, 0])],
            &[("Tperm", AttrValue::Type(DType::I32))],
        )
        .unwrap();
        let y = ctx.output(0);
        assert_eq!(y.shape, vec![3, 2]);
        assert_eq!(y.data::<f32>(), vec![1., 4., 2., 5., 3., 6.]);
    }

    #[test]
    fn split_v_checks_num_split_against_size_splits() {
        let x = Tensor::new(&[10], &(0..10).map(|v| v as f32).collect::<Vec<_>>());
        let attrs = |n| {
            [
                ("num_split", AttrValue::Int(n)),
                ("Tlen", AttrValue::Type(DType::I32)),
            ]
        };
        let ok = run(
            "SplitV",
            DType::F32,
            vec![x.clone(), i32s(&[2, -1, 6]), scalar_i32(0)],
            &attrs(3),
        )
        .unwrap();
        assert_eq!(ok.num_outputs(), 3);
        assert_eq!(ok.output(1).data::<f32>(), vec![2., 3.]);
        let e = err_text(run(
            "SplitV",
            DType::F32,
            vec![x, i32s(&[2, 2, 6]), scalar_i32(0)],
            &attrs(4),
        ));
        assert!(
            e.contains("must be 1-D and have the same elements as outputs got 1 -D and 3 elements"),
            "{e}"
        );
    }
}
