//! Simulated scheduling decisions per second of wall time: how fast the simulator
//! runs a policy (FIFO, whose own cost is next to nothing, and rustland) and the
//! EEVDF model on the "game while building" mix plus a ping-pong pair.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use schedkit_policies::fifo::Fifo;
use schedkit_sim::{SimConfig, Simulation};
use schedkit_workload::Spec;

const SPEC: &str = r#"
name = "game while building"
duration_s = 5
seed = 1

[[group]]
name = "game"
kind = "periodic"
period_ms = 16.667
work_ms = 4

[[group]]
name = "build"
kind = "jobs"
parallel = "2x-cpus"
work_ms = { dist = "uniform", min = 5, max = 50 }

[[group]]
name = "pp"
kind = "pingpong"
work_us = 20
"#;

fn bench(c: &mut Criterion) {
    let spec = Spec::from_str_named(SPEC, "bench.toml").expect("valid bench spec");
    let sim = Simulation::new(spec, SimConfig::default());
    let probe = sim.run(Fifo::new(5_000_000)).expect("fifo runs");
    let mut g = c.benchmark_group("simulate 5 s, 2 CPUs");
    g.sample_size(20);
    g.throughput(Throughput::Elements(probe.sim.decisions));
    g.bench_function("fifo: policy decisions", |b| {
        b.iter(|| sim.run(Fifo::new(5_000_000)).expect("fifo runs"))
    });
    let rustland = || {
        schedkit_policies::RUSTLAND
            .build_default()
            .expect("rustland builds")
    };
    let probe = sim.run(rustland()).expect("rustland runs");
    g.throughput(Throughput::Elements(probe.sim.decisions));
    g.bench_function("rustland: policy decisions", |b| {
        b.iter(|| sim.run(rustland()).expect("rustland runs"))
    });
    let probe = sim.run_eevdf().expect("eevdf runs");
    g.throughput(Throughput::Elements(probe.sim.context_switches));
    g.bench_function("eevdf: context switches", |b| {
        b.iter(|| sim.run_eevdf().expect("eevdf runs"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
