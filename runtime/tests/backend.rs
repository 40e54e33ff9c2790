//! The linear layers' backend: the choice, and the CUDA kernels' algorithm. Without a CUDA
//! driver (CI, the development machines) the device test says that it skipped and why;
//! `auto` must pick the CPU and `cuda` must fail with the reason. NVRTC needs no GPU:
//! `tools/setup.sh` installs it, so the kernels are compiled here too.

use ksnn_formats::Shape;
use ksnn_formats::infer::output_shape;
use ksnn_formats::layer::{Conv2d, Op, Padding};
use ksnn_runtime::backend::{self, BackendChoice, ConvJob};

fn driver() -> bool {
    #[cfg(feature = "cuda")]
    return ksnn_runtime::backend::cuda::driver_present();
    #[cfg(not(feature = "cuda"))]
    false
}

fn words(seed: u64, n: usize) -> Vec<u64> {
    let mut g = ksnn_formats::example::SplitMix(seed);
    (0..n).map(|_| g.next_u64()).collect()
}

#[test]
fn auto_picks_the_cpu_without_a_driver_and_cuda_says_why() {
    if driver() {
        println!("skipped: a CUDA driver is present, so `auto` may pick the device");
        return;
    }
    let line = backend::install(BackendChoice::Auto).expect("auto never fails");
    assert!(line.starts_with("linear layers on the CPU"), "{line}");
    assert!(line.contains("auto"), "{line}");
    assert!(backend::installed().is_none());
    let e = backend::install(BackendChoice::Cuda)
        .unwrap_err()
        .to_string();
    #[cfg(feature = "cuda")]
    assert!(e.contains("no CUDA driver") && e.contains("libcuda"), "{e}");
    #[cfg(not(feature = "cuda"))]
    assert!(e.contains("without the `cuda` feature"), "{e}");
    println!("auto: {line}\ncuda: {e}");
}

/// Convolutions at the kernels' edges: output channels and pixels not multiples of the
/// tile, reductions shorter and longer than one, groups, stride, dilation, asymmetric
/// padding, depthwise with and without stride, and a fully connected layer as a 1×1
/// convolution of an `in×1×1` input.
fn convolutions() -> Vec<(Conv2d, Shape)> {
    let conv = |cin: u32, cout: u32, k: [u32; 2], s: u32, pad: [u32; 4], d: u32, g: u32| Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel: k,
        stride: [s, s],
        padding: Padding {
            top: pad[0],
            left: pad[1],
            bottom: pad[2],
            right: pad[3],
        },
        dilation: [d, d],
        groups: g,
        bias: false,
    };
    vec![
        (conv(1, 1, [1, 1], 1, [0; 4], 1, 1), Shape::new(1, 1, 1)),
        (conv(3, 17, [3, 3], 1, [1; 4], 1, 1), Shape::new(3, 9, 7)),
        (conv(16, 16, [1, 1], 1, [0; 4], 1, 1), Shape::new(16, 4, 4)),
        (
            conv(5, 33, [3, 2], 2, [1, 0, 2, 1], 1, 1),
            Shape::new(5, 11, 13),
        ),
        (conv(8, 12, [3, 3], 1, [2; 4], 2, 4), Shape::new(8, 10, 9)),
        (conv(6, 6, [3, 3], 1, [1; 4], 1, 6), Shape::new(6, 17, 5)),
        (conv(7, 7, [5, 5], 2, [2; 4], 1, 7), Shape::new(7, 19, 18)),
        (
            conv(300, 10, [1, 1], 1, [0; 4], 1, 1),
            Shape::new(300, 1, 1),
        ),
    ]
}

/// Runs `product` on random words for every convolution and checks it against the CPU's
/// `kernels::conv2d`.
fn equals_the_ring_convolution(
    what: &str,
    seed: u64,
    mut product: impl FnMut(&ConvJob, &[u64], &[u64]) -> Vec<u64>,
) {
    use ksnn_runtime::kernels::bilinear::{Bilinear, LinearMap};
    for (i, (op, xs)) in convolutions().iter().enumerate() {
        let xs = *xs;
        let ys = output_shape(&Op::Conv2d(op.clone()), &[xs]).expect("a valid convolution");
        let map = LinearMap::Conv { op, x: xs, y: ys };
        let s = seed + 2 * i as u64;
        let (x, w) = (words(s, map.x_len()), words(s + 1, map.w_len()));
        let want = ksnn_runtime::kernels::conv2d(&x, xs, op, ys, &w);
        let job = ConvJob {
            op: op.clone(),
            x: xs,
            y: ys,
        };
        let got = product(&job, &x, &w);
        assert!(got == want, "{what}: {op:?} on {xs:?}");
    }
}

/// The kernels' index arithmetic, emulated on the CPU tile by tile, equals the ring's
/// convolution bit for bit.
#[test]
fn the_kernels_arithmetic_equals_the_ring_convolution() {
    equals_the_ring_convolution("emulated", 0, |job, x, w| {
        ksnn_runtime::backend::geometry::emulate(job, x, w).expect("fits the kernel")
    });
}

/// The limb route — limb splits, im2col limbs, f64 GEMMs summed per shift, recombination —
/// equals the ring's convolution bit for bit; in chunks of a few output pixels too (4 KiB
/// of limbs), and with full-range words, whose limb sums are the largest.
#[test]
fn the_limb_route_equals_the_ring_convolution() {
    use ksnn_runtime::backend::limb_route::{CHUNK_BYTES, emulate};
    use ksnn_runtime::kernels::bilinear::{Bilinear, LinearMap};
    for chunk in [CHUNK_BYTES, 4 << 10] {
        equals_the_ring_convolution(&format!("limbs, {chunk} B chunks"), 50, |job, x, w| {
            emulate(job, x, w, chunk).expect("fits the route")
        });
    }
    let ones = |n: usize| vec![u64::MAX; n];
    let (op, xs) = &convolutions()[3];
    let ys = output_shape(&Op::Conv2d(op.clone()), &[*xs]).unwrap();
    let job = ConvJob {
        op: op.clone(),
        x: *xs,
        y: ys,
    };
    let map = LinearMap::Conv { op, x: *xs, y: ys };
    let (x, w) = (ones(map.x_len()), ones(map.w_len()));
    assert_eq!(
        emulate(&job, &x, &w, CHUNK_BYTES).unwrap(),
        ksnn_runtime::kernels::conv2d(&x, *xs, op, ys, &w)
    );
}

#[cfg(feature = "cuda")]
#[test]
fn nvrtc_compiles_the_kernels() {
    if !ksnn_runtime::backend::cuda::nvrtc_present() {
        println!("skipped: no NVRTC library (libnvrtc.so), so the kernels cannot be compiled here");
        return;
    }
    let ptx = ksnn_runtime::backend::cuda::compile().expect("the kernels compile");
    let src = ptx.to_src();
    for entry in [
        "conv_u64",
        "depthwise_u64",
        "split_limbs",
        "im2col_limbs",
        "recombine_limbs",
    ] {
        assert!(
            src.contains(&format!(".entry {entry}")),
            "no {entry} entry in the PTX"
        );
    }
    // 64-bit multiply-adds, the ring's arithmetic (not a float or 32-bit product).
    assert!(
        src.contains("mul.lo.s64") || src.contains("mad.lo.s64"),
        "{src}"
    );
    // The limb route's doubles (limbs converted from 64-bit integers and back).
    assert!(src.contains("cvt.rn.f64.u64"), "no u64→f64 conversion");
    println!(
        "NVRTC compiled the u64 and limb kernels: {} bytes of PTX",
        src.len()
    );
}

/// A CUBIN for a fixed architecture (what a device gets, so that a driver older than NVRTC
/// loads it without a PTX JIT), and a clear error for an architecture NVRTC does not know.
#[cfg(feature = "cuda")]
#[test]
fn nvrtc_compiles_a_cubin_for_the_devices_architecture() {
    use ksnn_runtime::backend::cuda::compile_cubin;
    if !ksnn_runtime::backend::cuda::nvrtc_present() {
        println!("skipped: no NVRTC library (libnvrtc.so), so the kernels cannot be compiled here");
        return;
    }
    let bin = compile_cubin("sm_80").expect("NVRTC knows sm_80");
    assert_eq!(&bin[..4], b"\x7fELF", "a CUBIN is an ELF image");
    let e = compile_cubin("sm_1").unwrap_err().to_string();
    assert!(e.contains("sm_1"), "{e}");
    println!("CUBIN for sm_80: {} bytes; sm_1: {e}", bin.len());
}

/// On a device, by both routes: every convolution twice, with coefficients uploaded per
/// product and kept resident, through the reused buffers (which grow between shapes).
#[cfg(feature = "cuda")]
#[test]
fn the_device_equals_the_ring_convolution() {
    use ksnn_runtime::backend::cuda::Route;
    use ksnn_runtime::backend::{Coeffs, Device};
    if !driver() {
        println!("skipped: no CUDA driver (libcuda.so.1 is not on the loader's path)");
        return;
    }
    let gpu = match ksnn_runtime::backend::cuda::Cuda::open(0) {
        Ok(g) => g,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    println!("{}", gpu.describe());
    for route in [Route::U64, Route::Limbs] {
        if let Err(e) = gpu.set_route(route) {
            println!("skipped the {route:?} route: {e}");
            continue;
        }
        let what = format!("{}, {route:?}", gpu.describe());
        equals_the_ring_convolution(&what, 100, |job, x, w| {
            gpu.start(job, x, w.into())
                .expect("starts")
                .finish()
                .expect("runs")
        });
        equals_the_ring_convolution(&format!("{what}, resident"), 200, |job, x, w| {
            let kept = gpu.keep(w).expect("uploads");
            let coeffs = Coeffs {
                host: w,
                resident: Some(&kept),
            };
            gpu.start(job, x, coeffs)
                .expect("starts")
                .finish()
                .expect("runs")
        });
    }
}
