//! `OpContext` over TensorFlow's kernel context: inputs fetched once,
//! outputs allocated or forwarded through the C API, float32 inputs rounded
//! for the low-precision modes.

use super::*;

/// `OpContext` over a TensorFlow kernel context.
pub(super) struct TfOpContext<'k> {
    api: &'static TfApi,
    ctx: *mut TF_OpKernelContext,
    state: &'k KernelState,
    npu: &'static Npu,
    /// Tensor handles we obtained; released when the kernel returns.
    owned: RefCell<Vec<*mut TF_Tensor>>,
    /// Inputs already fetched (their handles also in `owned`): a spec and
    /// then its kernel read the same input, one `TF_GetInput` serves both.
    inputs: RefCell<Vec<FetchedInput>>,
    /// Low precision the kernel multiplies in itself (`matrix_lowp`).
    lowp: Option<DType>,
    /// Low precision float32 inputs are rounded to before the kernel sees them
    /// (allow-list ops whose kernels do not handle `matrix_lowp`).
    round_inputs: Option<DType>,
    /// Rounded copies of inputs, by input index.
    rounded: RefCell<Vec<(usize, Box<[f32]>)>>,
    /// Outputs written by the kernel: (handle, dtype, shape).
    outputs: RefCell<Vec<(*mut TF_Tensor, DType, Vec<usize>)>>,
}

/// Input `index` as `TF_GetInput` gave it, with what a view needs.
struct FetchedInput {
    index: usize,
    handle: *mut TF_Tensor,
    /// TensorFlow's dtype code (not every one is a `DType`).
    dtype: TF_DataType,
    shape: Vec<usize>,
    data: *const u8,
    bytes: usize,
}

impl Drop for TfOpContext<'_> {
    fn drop(&mut self) {
        for t in self.owned.borrow_mut().drain(..) {
            // SAFETY: each handle came from TF_GetInput/TF_AllocateOutput once.
            unsafe { self.api.TF_DeleteTensor(t) }
        }
    }
}

impl<'k> TfOpContext<'k> {
    /// The context of one `compute` call: `lowp` for kernels that multiply
    /// in low precision themselves, `round_inputs` for the others.
    pub(super) fn new(
        api: &'static TfApi,
        ctx: *mut TF_OpKernelContext,
        state: &'k KernelState,
        npu: &'static Npu,
        lowp: Option<DType>,
        round_inputs: Option<DType>,
    ) -> TfOpContext<'k> {
        TfOpContext {
            api,
            ctx,
            state,
            npu,
            owned: RefCell::new(Vec::new()),
            inputs: RefCell::new(Vec::new()),
            lowp,
            round_inputs,
            rounded: RefCell::new(Vec::new()),
            outputs: RefCell::new(Vec::new()),
        }
    }
}

impl TfOpContext<'_> {
    /// Input `i` rounded to `lowp` (float32 values exactly representable in
    /// it), copied once per call.
    fn rounded_input(&self, i: usize, v: TensorView<'_>, lowp: DType) -> Result<TensorView<'_>> {
        let mut cache = self.rounded.borrow_mut();
        let data = match cache.iter().position(|(j, _)| *j == i) {
            Some(k) => &cache[k].1,
            None => {
                let mut copy: Box<[f32]> = v.data::<f32>()?.into();
                round_f32_to(lowp, &mut copy)?;
                cache.push((i, copy));
                &cache[cache.len() - 1].1
            }
        };
        // SAFETY: the boxed slice lives in `rounded` (never removed before the
        // context drops) and a Box's heap data does not move when the Vec grows.
        Ok(unsafe {
            TensorView::from_raw(
                DType::F32,
                v.shape,
                data.as_ptr() as *const u8,
                std::mem::size_of_val(&**data),
            )
        })
    }

    /// Rounds every float32 output to `lowp` in place: mixed precision for
    /// one op outside a rewritten graph, as if it were wrapped in casts.
    pub(super) fn round_outputs(&self, lowp: DType) -> Result<()> {
        for (t, dtype, shape) in self.outputs.borrow().iter() {
            if *dtype == DType::F32 {
                // SAFETY: the output is ours until the kernel call returns.
                let mut out = unsafe { self.output_view(*t, *dtype, shape) };
                round_f32_to(lowp, out.data_mut::<f32>()?)?;
            }
        }
        Ok(())
    }

    fn keep(&self, t: *mut TF_Tensor) -> *mut TF_Tensor {
        self.owned.borrow_mut().push(t);
        t
    }

    /// Input `i`'s tensor handle, released when the context drops.
    ///
    /// # Safety
    /// `self.ctx` must be the live kernel context of the running `compute`
    /// (true for every TfOpContext: it lives inside that call).
    unsafe fn raw_input(&self, i: usize) -> Result<*mut TF_Tensor> {
        // SAFETY: as this function's.
        unsafe { self.fetched(i, |f| f.handle) }
    }

    /// `f` of input `i`, fetched once per kernel call.
    ///
    /// # Safety
    /// As `raw_input`.
    unsafe fn fetched<R>(&self, i: usize, f: impl FnOnce(&FetchedInput) -> R) -> Result<R> {
        if let Some(hit) = self.inputs.borrow().iter().find(|x| x.index == i) {
            return Ok(f(hit));
        }
        let st = Status::new()?;
        let mut t: *mut TF_Tensor = std::ptr::null_mut();
        // SAFETY: `ctx` is live (this function's contract); `t` is a local
        // the call writes; TensorFlow checks `i` against the input count.
        unsafe { self.api.TF_GetInput(self.ctx, i as i32, &mut t, st.0) };
        check(st.0)?;
        let t = self.keep(t);
        // SAFETY: `t` is live, kept in `owned` until the context drops.
        let fetched = unsafe {
            FetchedInput {
                index: i,
                handle: t,
                dtype: self.api.TF_TensorType(t),
                shape: self.shape_of(t),
                data: self.api.TF_TensorData(t) as *const u8,
                bytes: self.api.TF_TensorByteSize(t),
            }
        };
        let r = f(&fetched);
        self.inputs.borrow_mut().push(fetched);
        Ok(r)
    }

    /// The shape of `t`.
    ///
    /// # Safety
    /// `t` must be a live tensor handle.
    unsafe fn shape_of(&self, t: *const TF_Tensor) -> Vec<usize> {
        // SAFETY: `t` is live (this function's contract); `d` stays below
        // its rank.
        unsafe {
            (0..self.api.TF_NumDims(t))
                .map(|d| self.api.TF_Dim(t, d).max(0) as usize)
                .collect()
        }
    }

    /// The dtype of `t`, if tf_adapter handles it.
    ///
    /// # Safety
    /// `t` must be a live tensor handle.
    unsafe fn dtype_of(&self, t: *const TF_Tensor) -> Result<DType> {
        // SAFETY: `t` is live (this function's contract).
        let v = unsafe { self.api.TF_TensorType(t) };
        DType::from_tf(v)
            .ok_or_else(|| Error::Unimplemented(format!("dtype {v} is not supported on NPU")))
    }

    /// A writable view of tensor `t`'s buffer.
    ///
    /// # Safety
    /// `t` must be a tensor handle kept alive in `owned` (so for the view's
    /// lifetime, which is the context's), of `dtype` and `shape`, whose
    /// buffer nothing else reads or writes while the view lives except an
    /// input the kernel was told aliases it (TensorMut::from_raw's contract).
    unsafe fn output_view(
        &self,
        t: *mut TF_Tensor,
        dtype: DType,
        shape: &[usize],
    ) -> TensorMut<'_> {
        // SAFETY: `t` is live for the view's lifetime and its buffer is
        // `TF_TensorByteSize` bytes, exclusively ours (this function's
        // contract).
        unsafe {
            TensorMut::from_raw(
                dtype,
                shape.to_vec(),
                self.api.TF_TensorData(t) as *mut u8,
                self.api.TF_TensorByteSize(t),
            )
        }
    }

    /// Adds the device's figures to an allocation failure.
    fn alloc_error(&self, e: Error, i: usize, dtype: DType, shape: &[usize]) -> Error {
        match e {
            Error::ResourceExhausted(_) => {
                // This error carries the reason itself: nothing waits for it.
                self.npu.memory.take_last_failure();
                let bytes = shape.iter().product::<usize>() as u64 * dtype.size() as u64;
                Error::ResourceExhausted(format!(
                    "{} While allocating output {i} of {} (node '{}'): shape {}, {dtype}.",
                    self.npu.memory.oom_message(bytes),
                    self.state.op,
                    self.state.node,
                    fmt_shape(shape)
                ))
            }
            other => other,
        }
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

impl OpContext for TfOpContext<'_> {
    fn node_name(&self) -> &str {
        &self.state.node
    }

    fn num_inputs(&self) -> usize {
        // SAFETY: live context.
        unsafe { self.api.TF_NumInputs(self.ctx).max(0) as usize }
    }

    fn input(&self, i: usize) -> Result<TensorView<'_>> {
        // SAFETY: live context (this runs inside the kernel call).
        let (dtype, shape, data, bytes) =
            unsafe { self.fetched(i, |x| (x.dtype, x.shape.clone(), x.data, x.bytes))? };
        let dtype = DType::from_tf(dtype).ok_or_else(|| {
            Error::Unimplemented(format!("dtype {dtype} is not supported on NPU"))
        })?;
        // SAFETY: `data` and `bytes` describe the buffer of a handle kept
        // alive in `owned` until the kernel returns.
        let v = unsafe { TensorView::from_raw(dtype, shape, data, bytes) };
        match self.round_inputs {
            Some(lowp) if v.dtype == DType::F32 => self.rounded_input(i, v, lowp),
            _ => Ok(v),
        }
    }

    fn attrs(&self) -> &Attrs {
        &self.state.attrs
    }

    fn allocate_output(&self, i: usize, dtype: DType, shape: &[usize]) -> Result<TensorMut<'_>> {
        let d = dims(shape);
        let bytes = shape.iter().product::<usize>() * dtype.size();
        // SAFETY: live context; the new tensor is exclusively ours to fill.
        unsafe {
            let st = Status::new()?;
            let t = self.api.TF_AllocateOutput(
                self.ctx,
                i as i32,
                dtype.as_tf(),
                d.as_ptr(),
                d.len() as i32,
                bytes,
                st.0,
            );
            check(st.0).map_err(|e| self.alloc_error(e, i, dtype, shape))?;
            self.keep(t);
            self.outputs.borrow_mut().push((t, dtype, shape.to_vec()));
            Ok(self.output_view(t, dtype, shape))
        }
    }

    fn forward_or_allocate(
        &self,
        candidates: &[usize],
        i: usize,
        dtype: DType,
        shape: &[usize],
    ) -> Result<(TensorMut<'_>, Option<usize>)> {
        let d = dims(shape);
        let cands: Vec<i32> = candidates.iter().map(|&c| c as i32).collect();
        // SAFETY: as in allocate_output; a forwarded buffer is no longer read by
        // anyone else (TensorFlow checked its reference count).
        unsafe {
            let st = Status::new()?;
            let mut fwd: i32 = -1;
            let t = self.api.TF_ForwardInputOrAllocateOutput(
                self.ctx,
                cands.as_ptr(),
                cands.len() as i32,
                i as i32,
                d.as_ptr(),
                d.len() as i32,
                &mut fwd,
                st.0,
            );
            check(st.0).map_err(|e| self.alloc_error(e, i, dtype, shape))?;
            self.keep(t);
            self.outputs.borrow_mut().push((t, dtype, shape.to_vec()));
            Ok((self.output_view(t, dtype, shape), usize::try_from(fwd).ok()))
        }
    }

    fn matrix_lowp(&self) -> Option<DType> {
        self.lowp
    }

    fn input_in_place(&self, input: usize, output: usize) -> Result<TensorMut<'_>> {
        // SAFETY: the handle stays alive in `owned` until the kernel returns;
        // TensorFlow shares the buffer with the output by reference count.
        // Writing through it is what the aliasing op means (TensorFlow's own
        // CPU kernel does the same: `Tensor output = value; // alias`).
        unsafe {
            let st = Status::new()?;
            let src = self.raw_input(input)?;
            let (dtype, shape) = (self.dtype_of(src)?, self.shape_of(src));
            self.api.TF_SetOutput(self.ctx, output as i32, src, st.0);
            check(st.0)?;
            Ok(self.output_view(src, dtype, &shape))
        }
    }

    fn alias_output(&self, i: usize, input: usize, shape: &[usize]) -> Result<()> {
        // SAFETY: TensorFlow shares the buffer by reference count.
        unsafe {
            let st = Status::new()?;
            let src = self.raw_input(input)?;
            if self.shape_of(src) == shape {
                self.api.TF_SetOutput(self.ctx, i as i32, src, st.0);
                return check(st.0);
            }
            let dtype = self.api.TF_TensorType(src);
            let empty = [0i64];
            let to = self.keep(self.api.TF_AllocateTensor(dtype, empty.as_ptr(), 1, 0));
            let d = dims(shape);
            self.api
                .TF_TensorBitcastFrom(src, dtype, to, d.as_ptr(), d.len() as i32, st.0);
            check(st.0)?;
            self.api.TF_SetOutput(self.ctx, i as i32, to, st.0);
            check(st.0)
        }
    }
}
