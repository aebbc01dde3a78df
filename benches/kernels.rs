//! Kernel throughput at PAD's batch-64 shapes, 1 and 2 threads, in GFLOP/s.
//!
//! `cargo bench --bench kernels`; criterion reports "elem/s", where one element is one
//! floating-point operation (multiply-adds count 2), so `Gelem/s` reads as GFLOP/s.
//! `forward` is the layer's convolution; `backward` computes the weight, bias and input
//! gradients (2x the forward's work).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use padsim::kernels::bf16::{matmul_bf16, Bf16Path, PackedA, PackedB};
use padsim::kernels::conv::{self, ConvGeometry};
use padsim::kernels::gemm::{matmul, Op};
use padsim::kernels::Activation;
use std::hint::black_box;
use std::time::Duration;

const BATCH: usize = 64;

struct Layer {
    name: &'static str,
    transpose: bool,
    geometry: ConvGeometry,
    /// Side of the layer's input map.
    side: usize,
}

fn layers() -> Vec<Layer> {
    let g = |i, o, s, p| ConvGeometry {
        in_channels: i,
        out_channels: o,
        kernel: 4,
        stride: s,
        padding: p,
    };
    vec![
        Layer {
            name: "E.conv1",
            transpose: false,
            geometry: g(3, 64, 2, 1),
            side: 32,
        },
        Layer {
            name: "E.conv2",
            transpose: false,
            geometry: g(64, 128, 2, 1),
            side: 16,
        },
        Layer {
            name: "E.conv3",
            transpose: false,
            geometry: g(128, 256, 2, 1),
            side: 8,
        },
        Layer {
            name: "E.latent",
            transpose: false,
            geometry: g(256, 256, 2, 0),
            side: 4,
        },
        Layer {
            name: "G.tconv1",
            transpose: true,
            geometry: g(256, 256, 1, 0),
            side: 1,
        },
        Layer {
            name: "G.tconv2",
            transpose: true,
            geometry: g(256, 128, 2, 1),
            side: 4,
        },
        Layer {
            name: "G.tconv3",
            transpose: true,
            geometry: g(128, 64, 2, 1),
            side: 8,
        },
        Layer {
            name: "G.tconv4",
            transpose: true,
            geometry: g(64, 3, 2, 1),
            side: 16,
        },
    ]
}

fn filled(len: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * scale)
        .collect()
}

fn kernels(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut group = c.benchmark_group(format!("kernels_b{BATCH}_t{threads}"));
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for layer in layers() {
            let g = layer.geometry;
            let s = layer.side;
            let x = filled(g.in_channels * BATCH * s * s, 1.0);
            let w = filled(g.weight_len(), 0.02);
            let b = filled(g.out_channels, 0.1);
            let mut dw = vec![0.0f32; w.len()];
            let mut db = vec![0.0f32; b.len()];
            // Buffers live across iterations, as an area keeps them across cycles.
            let (mut scratch, mut y, mut dx) = (conv::ConvScratch::new(), Vec::new(), Vec::new());
            if layer.transpose {
                let grid = conv::transpose_grid(BATCH, s, s, &g);
                let flops = 2 * g.weight_len() * BATCH * s * s;
                let dy = filled(grid.map_len(), 1e-3);
                group.throughput(Throughput::Elements(flops as u64));
                group.bench_function(BenchmarkId::new(layer.name, "forward"), |bench| {
                    pool.install(|| {
                        bench.iter(|| {
                            conv::conv_transpose2d_forward(
                                black_box(&x),
                                BATCH,
                                s,
                                s,
                                &g,
                                &w,
                                &b,
                                Activation::LeakyRelu(0.2),
                                &mut scratch,
                                &mut y,
                            )
                        })
                    })
                });
                group.throughput(Throughput::Elements(2 * flops as u64));
                group.bench_function(BenchmarkId::new(layer.name, "backward"), |bench| {
                    pool.install(|| {
                        bench.iter(|| {
                            conv::conv_transpose2d_backward(
                                black_box(&dy),
                                &x,
                                &grid,
                                &g,
                                &w,
                                conv::SynapticGradients {
                                    weight: &mut dw,
                                    weight_update: conv::Update::Overwrite,
                                    bias: &mut db,
                                    bias_update: conv::Update::Overwrite,
                                },
                                &mut scratch,
                                Some(&mut dx),
                            )
                        })
                    })
                });
            } else {
                let mut col = conv::KeptInput::default();
                let grid = conv::conv2d_forward(
                    &x,
                    BATCH,
                    s,
                    s,
                    &g,
                    &w,
                    &b,
                    Activation::LeakyRelu(0.2),
                    &mut col,
                    &mut y,
                );
                let flops = 2 * g.weight_len() * grid.cols();
                let dy = filled(y.len(), 1e-3);
                group.throughput(Throughput::Elements(flops as u64));
                group.bench_function(BenchmarkId::new(layer.name, "forward"), |bench| {
                    pool.install(|| {
                        bench.iter(|| {
                            conv::conv2d_forward(
                                black_box(&x),
                                BATCH,
                                s,
                                s,
                                &g,
                                &w,
                                &b,
                                Activation::LeakyRelu(0.2),
                                &mut col,
                                &mut y,
                            )
                        })
                    })
                });
                group.throughput(Throughput::Elements(2 * flops as u64));
                group.bench_function(BenchmarkId::new(layer.name, "backward"), |bench| {
                    pool.install(|| {
                        bench.iter(|| {
                            conv::conv2d_backward(
                                black_box(&dy),
                                &col,
                                &grid,
                                &g,
                                &w,
                                conv::SynapticGradients {
                                    weight: &mut dw,
                                    weight_update: conv::Update::Overwrite,
                                    bias: &mut db,
                                    bias_update: conv::Update::Overwrite,
                                },
                                &mut scratch,
                                Some(&mut dx),
                            )
                        })
                    })
                });
            }
        }
        // The GEMM ceiling: E.conv2's forward product as one large, well-shaped matmul.
        let (m, n, k) = (128, 4096, 1024);
        let a = filled(m * k, 0.02);
        let bm = filled(k * n, 1.0);
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements(2 * (m * n * k) as u64));
        group.bench_function(
            BenchmarkId::new("gemm_ceiling", format!("{m}x{n}x{k}")),
            |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        matmul(
                            m,
                            n,
                            k,
                            black_box(&a),
                            Op::Plain,
                            &bm,
                            Op::Plain,
                            0.0,
                            &mut out,
                        )
                    })
                })
            },
        );
        // The same product with bfloat16 operands (f32 accumulation), B packed once as a weight
        // would be, A packed in every iteration as an im2col matrix would be.
        let packed_b = PackedB::new(k, n, &bm, Op::Plain);
        for path in [Bf16Path::Amx, Bf16Path::Avx512Bf16] {
            if !path.available() {
                continue;
            }
            group.bench_function(
                BenchmarkId::new(format!("gemm_bf16_{}", path.name()), format!("{m}x{n}x{k}")),
                |bench| {
                    pool.install(|| {
                        bench.iter(|| {
                            let packed_a = PackedA::new(m, k, black_box(&a), Op::Plain);
                            matmul_bf16(path, &packed_a, &packed_b, 0.0, &mut out)
                        })
                    })
                },
            );
        }
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
