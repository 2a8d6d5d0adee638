//! Acceptance test of the machine profile: with the shipped VM profile, the simulator
//! must rank EEVDF, fifo and rustland as the VM benchmark did (docs/bench/medians.json,
//! the last recorded run) on every headline figure of the shipped scenarios: deadline
//! misses and lateness p99 of the periodic tasks, round trips, and jobs per second.
//!
//! Ranking, not values: the simulator cannot reproduce absolute times of an emulated
//! guest, but it should tell a user which scheduler wins. Two schedulers whose VM
//! medians are within [`TIE`] of each other are a tie, and the simulator may order them
//! either way (five runs of the VM benchmark do not separate them better than that).
//!
//! Figures on which the simulator still disagrees with the VM are listed in
//! [`KNOWN_MISMATCHES`], each with the simulated and VM values: the test fails if one
//! of them starts to agree (so the list stays true) as well as if any other figure
//! disagrees.

use std::collections::BTreeMap;

use schedkit_sim::{compare, MachineProfile, Scheduler, SimConfig, Simulation};
use schedkit_workload::Spec;

/// The schedulers compared, in medians.json's column names.
const SCHEDULERS: [&str; 3] = ["eevdf", "fifo", "rustland"];

/// rustland's options in the recorded benchmark (2026-11-29, later; its defaults then).
/// Name an option here when its default changes, until medians.json is recorded anew.
const RECORDED_RUSTLAND_OPTIONS: &[(&str, Option<&str>)] = &[];

/// Relative difference under which two VM medians are a tie.
const TIE: f64 = 0.05;

/// The headline figures, per benchmark (the scenario's file name).
const HEADLINE: &[(&str, &str)] = &[
    ("game-while-building", "game: deadline misses"),
    ("game-while-building", "game: lateness p99"),
    ("game-while-building", "build: jobs"),
    ("desktop-mix", "audio: deadline misses"),
    ("desktop-mix", "audio: lateness p99"),
    ("desktop-mix", "video: deadline misses"),
    ("desktop-mix", "video: lateness p99"),
    ("desktop-mix", "ipc: round trips"),
    ("desktop-mix", "indexer: jobs"),
    ("pingpong", "pairs: round trips"),
];

/// Headline figures the simulator ranks differently from the VM, with the values seen
/// when they were listed (eevdf / fifo / rustland, simulated medians then VM medians,
/// from the recording of 2026-11-29, later).
/// All six are one gap: in the VM, EEVDF's periodic tasks now and then fall behind
/// for 60 to 70 ms, while three or more build jobs share their CPU (traced
/// 2026-11-29: frames of the game taking 61 to 73 ms, every wait between its slices
/// filled by build jobs); the simulated EEVDF's periodic tasks never fall behind. The
/// cause is not found (README.md, "What a trip costs").
const KNOWN_MISMATCHES: &[(&str, &str)] = &[
    // sim 0% / 6.0% / 0.17%, VM 31.3% / 20.3% / 0.33%.
    ("game-while-building", "game: deadline misses"),
    // sim 2.8 / 14.7 / 5.4 ms, VM 33.9 / 60.1 / 7.1 ms.
    ("game-while-building", "game: lateness p99"),
    // sim 0.75% / 80% / 1.1%, VM 25.0% / 81.5% / 9.95%.
    ("desktop-mix", "audio: deadline misses"),
    // sim 3.7 / 24.1 / 4.8 ms, VM 89.9 / 51.0 / 24.3 ms.
    ("desktop-mix", "audio: lateness p99"),
    // sim 0% / 20% / 4.7%, VM 11.7% / 40.3% / 4.0%.
    ("desktop-mix", "video: deadline misses"),
    // sim 3.3 / 25.5 / 18.9 ms, VM 96.7 / 78.2 / 21.0 ms (in the recording before,
    // 19.0 / 38.1 / 21.9 ms, the ranking agreed).
    ("desktop-mix", "video: lateness p99"),
];

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The VM medians of the headline figures: (benchmark, figure) -> per scheduler.
fn vm_medians() -> BTreeMap<(String, String), Vec<f64>> {
    let text = std::fs::read_to_string(root().join("docs/bench/medians.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let labels: Vec<&str> = v["schedulers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    let cols: Vec<usize> = SCHEDULERS
        .iter()
        .map(|s| labels.iter().position(|l| l == s).unwrap())
        .collect();
    let mut out = BTreeMap::new();
    for row in v["rows"].as_array().unwrap() {
        let key = (
            row["benchmark"].as_str().unwrap().to_string(),
            row["figure"].as_str().unwrap().to_string(),
        );
        let cells = row["cells"].as_array().unwrap();
        let vals: Option<Vec<f64>> = cols.iter().map(|&c| cells[c]["median"].as_f64()).collect();
        if let Some(vals) = vals {
            out.insert(key, vals);
        }
    }
    out
}

/// Seeds the simulator runs each scenario with (`None`: the spec's own). The VM's
/// figures are medians of five runs; the simulator's are medians of five seeds, so
/// that one seed's luck (which job is where when a frame starts) does not decide.
const SEEDS: [Option<u64>; 5] = [None, Some(101), Some(102), Some(103), Some(104)];

/// The simulated figures of one benchmark, per scheduler: medians over [`SEEDS`].
fn simulate(bench: &str) -> BTreeMap<String, Vec<f64>> {
    let path = root().join(format!("scenarios/{bench}.toml"));
    let spec = Spec::from_path(&path).unwrap();
    let mut all: BTreeMap<String, Vec<Vec<f64>>> = BTreeMap::new();
    for seed in SEEDS {
        let cfg = SimConfig {
            seed,
            ..SimConfig::from_profile(&MachineProfile::vm_default())
        };
        let sim = Simulation::new(spec.clone(), cfg);
        let runs = compare::run_all(&sim, &SCHEDULERS, |name| {
            if name == schedkit_sim::EEVDF_NAME {
                return Ok(Scheduler::Eevdf);
            }
            let e = schedkit_policies::ENTRIES.iter().find(|e| e.name == name);
            let e = e.ok_or("no such policy")?;
            // Simulate rustland as the recorded benchmark ran it.
            let p = if name == "rustland" {
                e.build_with(RECORDED_RUSTLAND_OPTIONS)?
            } else {
                e.build_default()?
            };
            Ok(Scheduler::Policy(p))
        });
        for (i, run) in runs.into_iter().enumerate() {
            for f in compare::figures(&run.unwrap()) {
                let per = all.entry(f.name).or_insert_with(|| vec![Vec::new(); 3]);
                per[i].push(f.value);
            }
        }
    }
    all.into_iter()
        .map(|(name, per)| (name, per.into_iter().map(median).collect()))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Whether `sim` orders every pair of schedulers as `vm` does, ties in `vm` excepted.
fn same_ranking(vm: &[f64], sim: &[f64]) -> bool {
    for i in 0..vm.len() {
        for j in i + 1..vm.len() {
            let (a, b) = (vm[i], vm[j]);
            if (a - b).abs() <= TIE * a.abs().max(b.abs()) {
                continue;
            }
            if (a < b) != (sim[i] < sim[j]) || sim[i] == sim[j] {
                return false;
            }
        }
    }
    true
}

/// Schedulers from best to worst, `=` between VM ties.
fn order(vals: &[f64], higher_better: bool, ties: bool) -> String {
    let mut idx: Vec<usize> = (0..vals.len()).collect();
    idx.sort_by(|&a, &b| {
        let o = vals[a].total_cmp(&vals[b]);
        if higher_better {
            o.reverse()
        } else {
            o
        }
    });
    let mut s = SCHEDULERS[idx[0]].to_string();
    for w in idx.windows(2) {
        let (a, b) = (vals[w[0]], vals[w[1]]);
        let tie = ties && (a - b).abs() <= TIE * a.abs().max(b.abs());
        s.push_str(if tie { " = " } else { " > " });
        s.push_str(SCHEDULERS[w[1]]);
    }
    s
}

fn fmt(vals: &[f64]) -> String {
    let v: Vec<String> = SCHEDULERS
        .iter()
        .zip(vals)
        .map(|(s, v)| format!("{s} {v:.4}"))
        .collect();
    v.join(", ")
}

#[test]
fn vm_profile_ranks_schedulers_as_the_vm_benchmark_does() {
    let vm = vm_medians();
    let mut sims: BTreeMap<&str, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut table = String::new();
    let mut failures = Vec::new();
    for &(bench, figure) in HEADLINE {
        let sim = sims.entry(bench).or_insert_with(|| simulate(bench));
        let vm_vals = vm
            .get(&(bench.to_string(), figure.to_string()))
            .unwrap_or_else(|| panic!("medians.json has no {bench} / {figure}"));
        let sim_vals = sim
            .get(figure)
            .unwrap_or_else(|| panic!("the simulation has no {figure} in {bench}"));
        let higher = figure.ends_with("jobs") || figure.ends_with("round trips");
        let same = same_ranking(vm_vals, sim_vals);
        let known = KNOWN_MISMATCHES.contains(&(bench, figure));
        table.push_str(&format!(
            "{bench} / {figure}: {}\n    VM  {}  [{}]\n    sim {}  [{}]\n",
            if same { "same ranking" } else { "MISMATCH" },
            order(vm_vals, higher, true),
            fmt(vm_vals),
            order(sim_vals, higher, false),
            fmt(sim_vals),
        ));
        if same == known {
            failures.push(format!(
                "{bench} / {figure}: {}",
                if same {
                    "now ranks as in the VM: remove it from KNOWN_MISMATCHES"
                } else {
                    "ranks differently from the VM"
                }
            ));
        }
    }
    eprintln!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ties_accept_either_order_and_other_pairs_must_agree() {
    assert!(same_ranking(&[1.0, 1.04, 3.0], &[2.0, 1.0, 9.0]));
    assert!(!same_ranking(&[1.0, 1.2, 3.0], &[2.0, 1.0, 9.0]));
    assert!(!same_ranking(&[1.0, 2.0, 3.0], &[1.0, 1.0, 3.0]));
}
