"""Argument-check cases of the complex family: complex64 ops."""

import tensorflow as tf

from .common import family, rand, raw


def crand(rng, shape):
    return tf.complex(rand(rng, shape), rand(rng, shape))


@family
def cases_complex(rng):
    """complex64: Complex/Real/Imag, RFFT/IRFFT, complex arithmetic, casts."""
    c = crand(rng, [3, 5])
    cases = [
        raw("Complex", "same shape", real=rand(rng, [3, 5]), imag=rand(rng, [3, 5]), Tout=tf.complex64),
        raw("Complex", "broadcast", real=rand(rng, [3, 1]), imag=rand(rng, [4]), Tout=tf.complex64),
        raw("Complex", "scalar part", real=rand(rng, []), imag=rand(rng, [2, 3]), Tout=tf.complex64),
        raw("Complex", "incompatible shapes", real=rand(rng, [3]), imag=rand(rng, [4]), Tout=tf.complex64),
        raw("Complex", "empty", real=rand(rng, [0, 3]), imag=rand(rng, [1, 3]), Tout=tf.complex64),
        raw("Real", "valid", input=c, Tout=tf.float32),
        raw("Imag", "valid", input=c, Tout=tf.float32),
        raw("Imag", "empty", input=crand(rng, [0, 2]), Tout=tf.float32),
        raw("Cast", "complex64 -> float32 (real part)", x=c, DstT=tf.float32),
        raw("Cast", "complex64 -> int64", x=c, DstT=tf.int64),
        raw("Cast", "float32 -> complex64", x=rand(rng, [4]), DstT=tf.complex64),
        raw("Cast", "float64 -> complex64", x=rand(rng, [4], tf.float64), DstT=tf.complex64),
        raw("Cast", "int64 -> complex64", x=rand(rng, [4], tf.int64), DstT=tf.complex64),
        raw("Cast", "bool -> complex64", x=rand(rng, [4], tf.bool), DstT=tf.complex64),
        raw("StridedSlice", "complex64", input=c, begin=[1, 0], end=[3, 5], strides=[1, 2]),
        raw("AddN", "complex64", inputs=[c, crand(rng, [3, 5]), crand(rng, [3, 5])]),
    ]
    for op in ("AddV2", "Sub", "Mul", "Add"):
        cases += [
            raw(op, "complex64", x=c, y=crand(rng, [3, 5])),
            raw(op, "complex64 broadcast", x=c, y=crand(rng, [5])),
            raw(op, "complex64 incompatible", x=c, y=crand(rng, [4])),
        ]
    for _ in range(8):
        rows = [int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 3)))]
        n = int(rng.integers(1, 20))
        have = n + int(rng.integers(0, 3))
        # An FFT's float32 rounding is relative to the signal, not to each bin.
        cases.append(raw("RFFT", f"random n={n}", input=rand(rng, rows + [have]), fft_length=[n], atol=1e-5))
        half = n // 2 + 1 + int(rng.integers(0, 3))
        cases.append(raw("IRFFT", f"random n={n}", input=crand(rng, rows + [half]), fft_length=[n], atol=1e-5))
    for _ in range(4):
        shape = [int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 2)))] + [int(rng.integers(1, 17))]
        cases += [
            raw("FFT", "random", input=crand(rng, shape), atol=1e-5),
            raw("IFFT", "random", input=crand(rng, shape), atol=1e-5),
        ]
    cases += [
        raw("FFT", "scalar", input=crand(rng, [])),
        raw("FFT", "no rows", input=crand(rng, [0, 4])),
        raw("IFFT", "empty rows", input=crand(rng, [3, 0])),
        raw("RFFT", "input shorter than fft_length", input=rand(rng, [3, 8]), fft_length=[9]),
        raw("RFFT", "fft_length of 2", input=rand(rng, [3, 8]), fft_length=[8, 8]),
        raw("RFFT", "negative fft_length", input=rand(rng, [3, 8]), fft_length=[-2]),
        raw("RFFT", "scalar input", input=rand(rng, []), fft_length=[1]),
        raw("RFFT", "no rows", input=rand(rng, [0, 8]), fft_length=[8]),
        raw("IRFFT", "too few bins", input=crand(rng, [3, 5]), fft_length=[10]),
        raw("IRFFT", "odd length", input=crand(rng, [3, 5]), fft_length=[9], atol=1e-5),
        raw("IRFFT", "cropped bins", input=crand(rng, [3, 5]), fft_length=[4], atol=1e-5),
        raw("IRFFT", "no rows", input=crand(rng, [0, 5]), fft_length=[8]),
    ]
    return cases
