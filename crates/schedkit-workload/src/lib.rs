//! Workloads: a scenario described once in TOML ([`spec`]), run for real on the live
//! kernel ([`exec`]) or modelled by the simulator (`schedkit-sim`), and measured into
//! the same [`report::Report`] either way, so real and simulated results can be laid
//! side by side; [`figures`] names that report's figures and writes their values, once
//! for every table that shows them.
//!
//! ```
//! use schedkit_workload::spec::Spec;
//! let spec = Spec::from_str_named(r#"
//!     name = "hogs"
//!     duration_s = 1
//!     [[group]]
//!     name = "hog"
//!     kind = "cpu"
//!     count = 2
//! "#, "hogs.toml").unwrap();
//! assert_eq!(spec.duration_ns, 1_000_000_000);
//! ```

pub mod exec;
pub mod figures;
pub mod report;
pub mod spec;

pub use figures::{Better, Figure, Unit};
pub use report::{LatencyRecorder, Percentiles, Report};
pub use spec::{Group, Kind, Parallel, Rng, Spec, SpecError, TooManyTasks, WorkDist};
