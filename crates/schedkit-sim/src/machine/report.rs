//! The figures of a finished run: the workload's [`Report`], as the real executor
//! gives it, per-CPU time accounting ([`CpuTime`]), and the simulator's own
//! [`SimStats`].

use schedkit_core::ExitInfo;
use schedkit_workload::report::{GroupReport, JobStats, PeriodicStats, PingPongStats};
use schedkit_workload::Report;

use super::engine::Engine;
use super::{Machine, SchedulerModel};
use crate::SimStats;

/// Per-CPU time accounting of a run: every nanosecond of every CPU is exactly one of
/// these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct CpuTime {
    /// Running workload tasks.
    pub task_ns: u64,
    /// Running the user-space scheduler.
    pub scheduler_ns: u64,
    /// Idle.
    pub idle_ns: u64,
}

impl Engine {
    pub(crate) fn cpu_times(&self) -> Vec<CpuTime> {
        self.cpus
            .iter()
            .map(|c| CpuTime {
                task_ns: c.task_ns,
                scheduler_ns: c.sched_ns,
                idle_ns: c.idle_ns,
            })
            .collect()
    }

    /// The shared report of this run, for scheduler `name`.
    pub(crate) fn report(&mut self, name: &str) -> Report {
        let duration = self.now;
        self.count_unfinished_frames();
        let mut groups = Vec::with_capacity(self.groups.len());
        for gs in &self.groups {
            let mut gr = GroupReport::new(&gs.name, gs.kind, gs.nr_tasks, gs.nice);
            match gs.kind {
                "jobs" => {
                    gr.task_cpu_ns = gs.job_cpu_ns.clone();
                    gr.jobs = Some(JobStats::new(
                        gs.started,
                        gs.completed,
                        gs.completion.summary(),
                        duration,
                    ));
                }
                kind => {
                    gr.task_cpu_ns = gs
                        .tasks
                        .iter()
                        .map(|&t| self.tasks[t].sum_exec_ns)
                        .collect();
                    if kind == "periodic" {
                        gr.periodic = Some(PeriodicStats::new(
                            gs.frames,
                            gs.misses,
                            gs.lateness.summary(),
                        ));
                    } else if kind == "pingpong" {
                        gr.pingpong = Some(PingPongStats::new(
                            gs.round_trips,
                            gs.rtt.summary(),
                            duration,
                        ));
                    }
                }
            }
            groups.push(gr);
        }
        Report::new(
            &self.scenario,
            name,
            duration,
            self.cpus.len() as u32,
            groups,
        )
    }
}

impl<S: SchedulerModel> Machine<S> {
    /// The simulator's figures for this run, which ended with `exit`; `seed` is the
    /// one job sizes were drawn from.
    pub(crate) fn sim_stats(&self, seed: u64, exit: ExitInfo) -> SimStats {
        let e = &self.engine;
        let cpus = e.cpu_times();
        let scheduler_cpu_ns: u64 = cpus.iter().map(|c| c.scheduler_ns).sum();
        let capacity = e.now as f64 * cpus.len() as f64;
        let m = self.model.stats();
        let c = m.counters;
        SimStats {
            seed,
            decisions: m.decisions,
            steps: m.steps,
            context_switches: e.context_switches,
            user_dispatches: c.user_dispatches,
            kernel_dispatches: c.kernel_dispatches,
            standing_dispatches: c.standing_dispatches,
            cancelled: c.cancelled,
            bounced: c.bounced,
            preemptions: c.preemptions,
            scheduler_preemptions: m.sched_preemptions,
            kept_running: m.kept_running,
            task_cpu_ns: e.tasks.iter().map(|t| t.sum_exec_ns).sum(),
            scheduler_cpu_ns,
            scheduler_share: if capacity > 0.0 {
                scheduler_cpu_ns as f64 / capacity
            } else {
                0.0
            },
            cpus,
            exit,
        }
    }
}
