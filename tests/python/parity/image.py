"""Argument-check cases of the image family: resize and image ops."""

import tensorflow as tf

from .common import family, rand, raw


@family
def cases_image(rng):
    cases = []
    img = rand(rng, [2, 5, 6, 3])
    for op in ("ResizeBilinear", "ResizeNearestNeighbor"):
        for dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16):
            size = [int(d) for d in rng.integers(1, 12, size=2)]
            corners = bool(rng.random() < 0.3)
            cases.append(raw(op, f"random {dtype.name}", images=tf.cast(img, dtype), size=size, align_corners=corners,
                             half_pixel_centers=not corners and bool(rng.random() < 0.5)))
        cases += [
            raw(op, "align_corners and half_pixel_centers", images=img, size=[3, 4], align_corners=True, half_pixel_centers=True),
            raw(op, "size of 3", images=img, size=[3, 4, 5]),
            raw(op, "size 2-D", images=img, size=[[3, 4]]),
            raw(op, "size 0", images=img, size=[0, 4]),
            raw(op, "negative size", images=img, size=[-3, 4]),
            raw(op, "images rank 3", images=rand(rng, [5, 6, 3]), size=[3, 4]),
            raw(op, "no images", images=rand(rng, [0, 5, 6, 3]), size=[3, 4]),
            raw(op, "no channels", images=rand(rng, [2, 5, 6, 0]), size=[3, 4]),
            raw(op, "input height 0", images=rand(rng, [2, 0, 6, 3]), size=[3, 4]),
            raw(op, "same size", images=img, size=[5, 6]),
        ]
    for dtype in (tf.float32, tf.float64, tf.float16, tf.bfloat16):
        for _ in range(2):
            size = [int(d) for d in rng.integers(1, 12, size=2)]
            corners = bool(rng.random() < 0.3)
            cases += [
                raw("ResizeBicubic", f"random {dtype.name}", images=tf.cast(img, dtype), size=size, align_corners=corners,
                    half_pixel_centers=not corners and bool(rng.random() < 0.6)),
                raw("ResizeArea", f"random {dtype.name}", images=tf.cast(img, dtype), size=size, align_corners=corners),
            ]
    cases += [
        raw("ResizeBicubic", "both flags", images=img, size=[3, 4], align_corners=True, half_pixel_centers=True),
        raw("ResizeBicubic", "size of 3", images=img, size=[3, 4, 5]),
        raw("ResizeBicubic", "negative size", images=img, size=[-3, 4]),
        raw("ResizeBicubic", "images rank 3", images=rand(rng, [5, 6, 3]), size=[3, 4]),
        raw("ResizeBicubic", "no images", images=rand(rng, [0, 5, 6, 3]), size=[3, 4]),
        raw("ResizeBicubic", "one-pixel image", images=rand(rng, [1, 1, 1, 2]), size=[3, 4], half_pixel_centers=True),
        raw("ResizeArea", "size 0", images=img, size=[0, 4]),
        raw("ResizeArea", "no channels", images=rand(rng, [2, 5, 6, 0]), size=[3, 4]),
        raw("ResizeArea", "upscale", images=img, size=[11, 13]),
        raw("ResizeArea", "same size", images=img, size=[5, 6]),
    ]
    for corners, half in ((False, False), (True, False), (False, True)):
        cases += [
            raw("ResizeBicubicGrad", f"align_corners={corners} half_pixel_centers={half}", grads=rand(rng, [2, 3, 8, 3]),
                original_image=img, align_corners=corners, half_pixel_centers=half),
            raw("ResizeBicubicGrad", f"float64, upscaled, align_corners={corners} half_pixel_centers={half}",
                grads=rand(rng, [2, 9, 11, 3]), original_image=tf.cast(img, tf.float64), align_corners=corners, half_pixel_centers=half),
        ]
    cases += [
        raw("ResizeBicubicGrad", "both flags", grads=rand(rng, [2, 3, 8, 3]), original_image=img, align_corners=True, half_pixel_centers=True),
        raw("ResizeBicubicGrad", "grads rank 3", grads=rand(rng, [3, 8, 3]), original_image=img),
        raw("ResizeBicubicGrad", "original height 0", grads=rand(rng, [2, 3, 8, 3]), original_image=rand(rng, [2, 0, 6, 3])),
    ]
    for corners, half in ((False, False), (True, False), (False, True), (True, True)):
        grads = rand(rng, [2, 3, 8, 3])
        cases += [
            raw("ResizeBilinearGrad", f"align_corners={corners} half_pixel_centers={half}", grads=grads,
                original_image=img, align_corners=corners, half_pixel_centers=half),
            raw("ResizeNearestNeighborGrad", f"align_corners={corners} half_pixel_centers={half}", grads=grads,
                size=[5, 6], align_corners=corners, half_pixel_centers=half),
        ]
    cases += [
        raw("ResizeBilinearGrad", "float64 image", grads=rand(rng, [1, 4, 4, 2]), original_image=rand(rng, [1, 7, 3, 2], tf.float64)),
        raw("ResizeBilinearGrad", "float16 image", grads=rand(rng, [1, 9, 2, 2]), original_image=rand(rng, [1, 4, 5, 2], tf.float16)),
        raw("ResizeBilinearGrad", "bfloat16 image", grads=rand(rng, [1, 9, 2, 2]), original_image=rand(rng, [1, 4, 5, 2], tf.bfloat16)),
        raw("ResizeNearestNeighborGrad", "float16", grads=rand(rng, [1, 9, 9, 2], tf.float16), size=[2, 4]),
        raw("ResizeNearestNeighborGrad", "bfloat16", grads=rand(rng, [1, 9, 9, 2], tf.bfloat16), size=[2, 4]),
        raw("ResizeBilinearGrad", "grads rank 3", grads=rand(rng, [3, 8, 3]), original_image=img),
        raw("ResizeBilinearGrad", "image rank 3", grads=rand(rng, [2, 3, 8, 3]), original_image=rand(rng, [5, 6, 3])),
        raw("ResizeBilinearGrad", "batch mismatch", grads=rand(rng, [1, 3, 8, 3]), original_image=img),
        raw("ResizeBilinearGrad", "channel mismatch", grads=rand(rng, [2, 3, 8, 2]), original_image=img),
        raw("ResizeBilinearGrad", "original height 0", grads=rand(rng, [2, 3, 8, 3]), original_image=rand(rng, [2, 0, 6, 3])),
        raw("ResizeNearestNeighborGrad", "float64", grads=rand(rng, [1, 4, 4, 2], tf.float64), size=[7, 3]),
        raw("ResizeNearestNeighborGrad", "size of 1", grads=rand(rng, [2, 3, 8, 3]), size=[5]),
        raw("ResizeNearestNeighborGrad", "size 0", grads=rand(rng, [2, 3, 8, 3]), size=[0, 6]),
        raw("ResizeNearestNeighborGrad", "grads rank 2", grads=rand(rng, [3, 8]), size=[5, 6]),
        raw("ResizeNearestNeighborGrad", "no grads", grads=rand(rng, [0, 3, 8, 3]), size=[5, 6]),
    ]
    # ScaleAndTranslate and its gradient (tf.image.resize with lanczos3/5,
    # gaussian, mitchellcubic...): every kernel_type, antialias on and off,
    # downscaling and upscaling, translated.
    kernels = ("lanczos1", "lanczos3", "lanczos5", "gaussian", "box", "triangle", "keyscubic", "mitchellcubic")
    down = dict(size=[3, 4], scale=[0.6, 4 / 6], translation=[0.0, 0.0])
    up = dict(size=[11, 9], scale=[2.2, 1.5], translation=[0.7, -1.3])
    for kernel in kernels:
        for antialias in (False, True):
            kt = dict(kernel_type=kernel, antialias=antialias)
            cases += [
                raw("ScaleAndTranslate", f"{kernel} antialias={antialias} down", images=img, **down, **kt),
                raw("ScaleAndTranslate", f"{kernel} antialias={antialias} up, translated", images=img, **up, **kt),
                raw("ScaleAndTranslateGrad", f"{kernel} antialias={antialias} down", grads=rand(rng, [2, 3, 4, 3]),
                    original_image=img, scale=down["scale"], translation=down["translation"], **kt),
                raw("ScaleAndTranslateGrad", f"{kernel} antialias={antialias} up, translated", grads=rand(rng, [2, 11, 9, 3]),
                    original_image=img, scale=up["scale"], translation=up["translation"], **kt),
            ]
    st = dict(scale=[0.6, 1.5], translation=[0.5, 0.0])
    for dtype in (tf.float64, tf.float16, tf.bfloat16):
        cases.append(raw("ScaleAndTranslate", f"{dtype.name} images", images=tf.cast(img, dtype), size=[3, 9], **st))
    cases += [
        raw("ScaleAndTranslate", "default attributes (lanczos3, antialias)", images=img, size=[3, 9], **st),
        raw("ScaleAndTranslate", "kernel_type in capitals", images=img, size=[3, 9], kernel_type="MitchellCubic", **st),
        raw("ScaleAndTranslate", "translated out of the image (zeros)", images=img, size=[4, 4], scale=[1.0, 1.0],
            translation=[9.0, -20.0]),
        raw("ScaleAndTranslate", "size unrelated to the scale", images=img, size=[2, 12], scale=[1.7, 0.4],
            translation=[-0.3, 0.8], kernel_type="gaussian"),
        raw("ScaleAndTranslate", "unknown kernel_type", images=img, size=[3, 9], kernel_type="bicubic", **st),
        raw("ScaleAndTranslate", "size of 3", images=img, size=[3, 4, 5], **st),
        raw("ScaleAndTranslate", "size 2-D", images=img, size=[[3, 4]], **st),
        raw("ScaleAndTranslate", "size 0", images=img, size=[0, 4], **st),
        raw("ScaleAndTranslate", "negative size", images=img, size=[3, -4], **st),
        raw("ScaleAndTranslate", "scale of 3", images=img, size=[3, 4], scale=[1.0, 1.0, 1.0], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "scale 2-D", images=img, size=[3, 4], scale=[[1.0, 1.0]], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "zero scale", images=img, size=[3, 4], scale=[1.0, 0.0], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "negative scale", images=img, size=[3, 4], scale=[-1.0, 1.0], translation=[0.0, 0.0]),
        raw("ScaleAndTranslate", "translation of 1", images=img, size=[3, 4], scale=[1.0, 1.0], translation=[0.0]),
        raw("ScaleAndTranslate", "images rank 3", images=rand(rng, [5, 6, 3]), size=[3, 4], **st),
        raw("ScaleAndTranslate", "no images", images=rand(rng, [0, 5, 6, 3]), size=[3, 4], **st),
        raw("ScaleAndTranslate", "no channels", images=rand(rng, [2, 5, 6, 0]), size=[3, 4], **st),
        raw("ScaleAndTranslate", "input width 0", images=rand(rng, [2, 5, 0, 3]), size=[3, 4], **st),
        raw("ScaleAndTranslateGrad", "default attributes", grads=rand(rng, [2, 3, 9, 3]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "batch and channels from grads", grads=rand(rng, [1, 3, 9, 2]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "original height 0", grads=rand(rng, [2, 3, 9, 3]), original_image=rand(rng, [2, 0, 6, 3]), **st),
        raw("ScaleAndTranslateGrad", "no grads", grads=rand(rng, [0, 3, 9, 3]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "unknown kernel_type", grads=rand(rng, [2, 3, 9, 3]), original_image=img, kernel_type="cubic", **st),
        raw("ScaleAndTranslateGrad", "grads rank 3", grads=rand(rng, [3, 9, 3]), original_image=img, **st),
        raw("ScaleAndTranslateGrad", "original rank 3", grads=rand(rng, [2, 3, 9, 3]), original_image=rand(rng, [5, 6, 3]), **st),
        raw("ScaleAndTranslateGrad", "zero scale", grads=rand(rng, [2, 3, 9, 3]), original_image=img, scale=[0.0, 1.5],
            translation=[0.0, 0.0]),
        raw("ScaleAndTranslateGrad", "scale of 3", grads=rand(rng, [2, 3, 9, 3]), original_image=img, scale=[1.0, 1.0, 1.0],
            translation=[0.0, 0.0]),
        raw("ScaleAndTranslateGrad", "translation of 3", grads=rand(rng, [2, 3, 9, 3]), original_image=img, scale=[0.6, 1.5],
            translation=[0.0, 0.0, 0.0]),
    ]
    return cases
