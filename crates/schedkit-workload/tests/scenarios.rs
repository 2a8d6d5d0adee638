//! Every scenario shipped in `scenarios/` parses and means what its comments say.

use std::path::PathBuf;

use schedkit_workload::spec::{Kind, Parallel, Spec};

fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

#[test]
fn every_shipped_scenario_parses() {
    let mut n = 0;
    for entry in std::fs::read_dir(scenarios_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let spec = Spec::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(!spec.groups.is_empty(), "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 4, "expected at least 4 scenarios, found {n}");
}

#[test]
fn game_while_building_is_a_60hz_frame_against_2x_cpus_jobs() {
    let spec = Spec::from_path(scenarios_dir().join("game-while-building.toml")).unwrap();
    match spec.group("game").unwrap().kind {
        Kind::Periodic { period_ns, work_ns } => {
            assert_eq!(period_ns, 16_667_000);
            assert_eq!(work_ns, 4_000_000);
        }
        ref k => panic!("game is {k:?}"),
    }
    match &spec.group("build").unwrap().kind {
        Kind::Jobs { parallel, .. } => assert_eq!(*parallel, Parallel::PerCpu(2)),
        k => panic!("build is {k:?}"),
    }
}

#[test]
fn missing_file_error_names_the_file() {
    let err = Spec::from_path("/nonexistent/x.toml")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/nonexistent/x.toml: cannot read"), "{err}");
}
