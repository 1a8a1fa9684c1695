//! Borrowed views of tensor memory. The memory belongs to whoever created the
//! view (TensorFlow's allocator in the plugin, the engine's arena elsewhere).

use crate::{DType, Element, Error, Result};
use std::marker::PhantomData;

fn typed_check<T: Element>(dtype: DType, ptr: *const u8) -> Result<()> {
    if T::DTYPE != dtype {
        return Err(Error::Internal(format!(
            "tensor holds {dtype}, kernel asked for {}",
            T::DTYPE
        )));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(Error::Internal(format!(
            "{dtype} tensor data at {ptr:p} is not aligned"
        )));
    }
    Ok(())
}

/// A read-only tensor: dtype, shape and the bytes of its elements.
#[derive(Clone, Debug)]
pub struct TensorView<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    ptr: *const u8,
    len: usize,
    _life: PhantomData<&'a [u8]>,
}

// SAFETY: a view is a shared borrow of plain data (like `&'a [u8]`, which is
// Send): `from_raw`'s contract forbids writes while it lives.
unsafe impl Send for TensorView<'_> {}
// SAFETY: as for Send: only reads go through a view, so sharing it between
// threads is sharing a `&'a [u8]`.
unsafe impl Sync for TensorView<'_> {}

impl<'a> TensorView<'a> {
    /// # Safety
    /// `ptr` must be valid for reads of `len` bytes for `'a` and not written meanwhile.
    pub unsafe fn from_raw(dtype: DType, shape: Vec<usize>, ptr: *const u8, len: usize) -> Self {
        TensorView {
            dtype,
            shape,
            ptr,
            len,
            _life: PhantomData,
        }
    }

    pub fn from_slice<T: Element>(shape: Vec<usize>, data: &'a [T]) -> Self {
        // SAFETY: borrowed from a live slice for 'a.
        unsafe {
            Self::from_raw(
                T::DTYPE,
                shape,
                data.as_ptr() as *const u8,
                std::mem::size_of_val(data),
            )
        }
    }

    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn bytes(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: guaranteed by from_raw's contract.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The elements as `&[T]`; errors when `T` is not this tensor's dtype.
    pub fn data<T: Element>(&self) -> Result<&'a [T]> {
        let n = self.num_elements();
        if n == 0 {
            return Ok(&[]);
        }
        typed_check::<T>(self.dtype, self.ptr)?;
        if n * std::mem::size_of::<T>() > self.len {
            return Err(Error::Internal(format!(
                "tensor of shape {:?} has only {} bytes",
                self.shape, self.len
            )));
        }
        // SAFETY: type, alignment and length checked; validity by from_raw's contract.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr as *const T, n) })
    }

    /// Reads a host-memory integer vector (shape arguments, axes).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        match self.dtype {
            DType::I32 => Ok(self.data::<i32>()?.iter().map(|&v| v as i64).collect()),
            DType::I64 => Ok(self.data::<i64>()?.to_vec()),
            d => Err(Error::InvalidArgument(format!(
                "expected an int32 or int64 tensor, got {d}"
            ))),
        }
    }
}

/// A writable tensor (a kernel's output).
#[derive(Debug)]
pub struct TensorMut<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    ptr: *mut u8,
    len: usize,
    _life: PhantomData<&'a mut [u8]>,
}

// SAFETY: a TensorMut is an exclusive borrow of plain bytes (like
// `&'a mut [u8]`, which is Send); `from_raw`'s contract makes it the only access
// path, so moving it to another thread moves that exclusive access with it.
unsafe impl Send for TensorMut<'_> {}

impl<'a> TensorMut<'a> {
    /// # Safety
    /// `ptr` must be valid for reads and writes of `len` bytes for `'a`, and no
    /// other live reference may access it, except an input the kernel was told
    /// aliases this output (in-place forwarding).
    pub unsafe fn from_raw(dtype: DType, shape: Vec<usize>, ptr: *mut u8, len: usize) -> Self {
        TensorMut {
            dtype,
            shape,
            ptr,
            len,
            _life: PhantomData,
        }
    }

    pub fn from_slice<T: Element>(shape: Vec<usize>, data: &'a mut [T]) -> Self {
        let len = std::mem::size_of_val(data);
        // SAFETY: exclusively borrowed from a live slice for 'a.
        unsafe { Self::from_raw(T::DTYPE, shape, data.as_mut_ptr() as *mut u8, len) }
    }

    pub fn num_elements(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn data_mut<T: Element>(&mut self) -> Result<&mut [T]> {
        let n = self.num_elements();
        if n == 0 {
            return Ok(&mut []);
        }
        typed_check::<T>(self.dtype, self.ptr)?;
        if n * std::mem::size_of::<T>() > self.len {
            return Err(Error::Internal(format!(
                "output of shape {:?} has only {} bytes",
                self.shape, self.len
            )));
        }
        // SAFETY: checked as in TensorView::data; exclusivity by from_raw's contract.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut T, n) })
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: by from_raw's contract.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The first `rows` entries along dimension 0 (a prefix of the buffer,
    /// e.g. the first images of a batch), as a tensor of its own.
    pub fn outer_prefix(&mut self, rows: usize) -> Result<TensorMut<'_>> {
        if self.shape.first().is_none_or(|&d| d < rows) {
            return Err(Error::Internal(format!(
                "no prefix of {rows} rows in a tensor of shape {:?}",
                self.shape
            )));
        }
        let mut shape = self.shape.clone();
        shape[0] = rows;
        let len = (shape.iter().product::<usize>() * self.dtype.size()).min(self.len);
        // SAFETY: a prefix of our buffer, exclusively borrowed from us.
        Ok(unsafe { TensorMut::from_raw(self.dtype, shape, self.ptr, len) })
    }

    /// A read-only view of the same memory (e.g. to pass an output on).
    pub fn as_view(&self) -> TensorView<'_> {
        // SAFETY: shares our exclusive borrow for the view's lifetime.
        unsafe { TensorView::from_raw(self.dtype, self.shape.clone(), self.ptr, self.len) }
    }
}
