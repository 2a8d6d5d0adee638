//! Compiles the BPF dispatcher and the tracer with clang and generates their Rust
//! skeletons.
//!
//! clang must be >= 16 (64-bit enum values in sched_ext's headers); `scripts/setup.sh`
//! installs clang-19 and puts a `clang` pointing at it in `target/tools/bin`, which is
//! used when present. Set `SCHEDKIT_CLANG` to use another.

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The BPF objects and the skeletons generated from them.
const OBJECTS: &[(&str, &str)] = &[
    ("bpf/schedkit.bpf.c", "schedkit.skel.rs"),
    ("bpf/trace.bpf.c", "trace.skel.rs"),
];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let clang = env::var_os("SCHEDKIT_CLANG")
        .map(PathBuf::from)
        .or_else(|| {
            let p = manifest.join("../../target/tools/bin/clang");
            p.exists().then_some(p)
        })
        .or_else(|| {
            let p = PathBuf::from("/usr/bin/clang-19");
            p.exists().then_some(p)
        })
        .unwrap_or_else(|| PathBuf::from("clang"));

    for (src, skel) in OBJECTS {
        SkeletonBuilder::new()
            .source(src)
            .clang(&clang)
            .clang_args([
                "-I",
                "bpf",
                "-D__TARGET_ARCH_x86",
                // 7.x kernels have anonymous tagged members in unions; without this
                // clang drops them and the struct layouts no longer match the kernel's.
                "-fms-extensions",
                "-Wno-microsoft-anon-tag",
            ])
            .build_and_generate(out.join(skel))
            .unwrap_or_else(|e| panic!("building {src} with {}: {e:#}", clang.display()));
    }
    println!("cargo:rerun-if-changed=bpf");
    println!("cargo:rerun-if-env-changed=SCHEDKIT_CLANG");
}
